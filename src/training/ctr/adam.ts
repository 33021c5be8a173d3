/** Adam (Kingma & Ba, 2015) over one flat parameter array, with optional L2 weight decay added to the gradient. */
export interface AdamOptions {
  readonly learningRate: number;
  readonly beta1?: number;
  readonly beta2?: number;
  readonly epsilon?: number;
  /** L2 penalty coefficient (gradient += l2 * param). */
  readonly l2?: number;
}

export class Adam {
  private readonly m: Float32Array;
  private readonly v: Float32Array;
  private t = 0;
  private readonly beta1: number;
  private readonly beta2: number;
  private readonly epsilon: number;
  private readonly l2: number;

  constructor(private readonly params: Float32Array, private readonly o: AdamOptions) {
    this.m = new Float32Array(params.length);
    this.v = new Float32Array(params.length);
    this.beta1 = o.beta1 ?? 0.9;
    this.beta2 = o.beta2 ?? 0.999;
    this.epsilon = o.epsilon ?? 1e-8;
    this.l2 = o.l2 ?? 0;
  }

  /** One step along `grad` (same length as the parameters). */
  step(grad: Float32Array): void {
    this.t++;
    const { m, v, params, beta1, beta2, epsilon, l2 } = this;
    // Bias corrections folded into the step size.
    const lr = (this.o.learningRate * Math.sqrt(1 - beta2 ** this.t)) / (1 - beta1 ** this.t);
    for (let i = 0; i < params.length; i++) {
      const g = grad[i]! + l2 * params[i]!;
      m[i] = beta1 * m[i]! + (1 - beta1) * g;
      v[i] = beta2 * v[i]! + (1 - beta2) * g * g;
      params[i] -= (lr * m[i]!) / (Math.sqrt(v[i]!) + epsilon);
    }
  }
}
