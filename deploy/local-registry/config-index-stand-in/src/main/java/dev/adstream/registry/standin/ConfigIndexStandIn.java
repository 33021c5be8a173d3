package dev.adstream.registry.standin;

import java.util.ArrayList;

import javax.inject.Singleton;

import apicurio.common.app.components.config.index.DynamicPropertiesInfoRecorder;
import io.apicurio.common.apps.config.DynamicConfigPropertyList;
import io.quarkus.arc.deployment.SyntheticBeanBuildItem;
import io.quarkus.deployment.annotations.BuildStep;
import io.quarkus.deployment.annotations.ExecutionTime;
import io.quarkus.deployment.annotations.Record;

/**
 * The registry injects a DynamicConfigPropertyList: the settings an admin may change at run time
 * through its REST API. The original build step lists them from the app's annotations; an empty
 * list is enough for us (every setting is passed as a -D flag at start and stays static).
 */
public class ConfigIndexStandIn {
    @BuildStep
    @Record(ExecutionTime.STATIC_INIT)
    SyntheticBeanBuildItem dynamicProperties(DynamicPropertiesInfoRecorder recorder) {
        return SyntheticBeanBuildItem.configure(DynamicConfigPropertyList.class)
                .scope(Singleton.class)
                .unremovable()
                .runtimeValue(recorder.initializePropertiesInfo(new ArrayList<>()))
                .done();
    }
}
