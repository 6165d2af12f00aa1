import { OpError } from '../compute/ops/op';
import { AppError } from '../errors';
import { backendFault } from './backend-fault';

describe('a broken backend is told by the error it wraps, not by our messages', () => {
  it('sees a WebAssembly trap or a backend abort through the causes', () => {
    const trap = new WebAssembly.RuntimeError('unreachable');
    expect(
      backendFault(new AppError('EVAL_ERROR', 'accumulate: node "a" (add): x', [], { cause: trap })),
    ).toBe(true);
    const abort = new Error('Aborted(). Build with -sASSERTIONS for more info.');
    expect(backendFault(new AppError('EVAL_ERROR', 'accumulate: node "a"', [], { cause: abort }))).toBe(true);
  });

  it('does not take a plan error for a fault because of the names it quotes', () => {
    expect(backendFault(new AppError('EVAL_ERROR', 'accumulate: node "unreachable" (add): x'))).toBe(false);
    const op = new OpError('attr names: "out of memory" is not a field');
    expect(backendFault(new AppError('EVAL_ERROR', 'accumulate: node "a"', [], { cause: op }))).toBe(false);
  });
});
