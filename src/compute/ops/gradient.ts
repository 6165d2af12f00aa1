import * as tf from '@tensorflow/tfjs';

/**
 * Runs `compute` as one taped op whose gradient with respect to every input is zero. TensorFlow treats
 * comparisons, logical ops and casts to int32 or bool as having no gradient, but tfjs has no gradient
 * function for most of them and throws when `value_and_grad` meets one between the params and the loss
 * (as in `where(greater(x, 0), x, 0)`). Kernels that return a stand-in (a fill for an empty reduction) use
 * it too, so the result stays connected to its inputs on the tape.
 */
export function withZeroGradient(
  inputs: readonly tf.Tensor[],
  compute: (xs: tf.Tensor[]) => tf.Tensor,
): tf.Tensor {
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    // customGrad appends its `save` function after the tensors.
    const xs = args.slice(0, inputs.length) as tf.Tensor[];
    return {
      value: compute(xs),
      // The engine requires float32 gradients, whatever the input's dtype.
      gradFunc: () => xs.map((x) => tf.zeros(x.shape, 'float32')),
    };
  });
  return op(...inputs);
}
