import { buildFedAvg, FEDAVG_OPTIONS } from './fedavg';
import { buildFederatedSum, FEDERATED_SUM_OPTIONS } from './federated-sum';
import { buildHistogram, HISTOGRAM_OPTIONS } from './histogram';
import { buildMean, MEAN_OPTIONS } from './mean';
import { definePlan, type LibraryPlan } from './options';
import { buildTemperatureSensor, TEMPERATURE_SENSOR_OPTIONS } from './temperature-sensor';

export { buildFedAvg, FEDAVG_OPTIONS, type FedAvgOptions } from './fedavg';
export { buildFederatedSum, FEDERATED_SUM_OPTIONS, type FederatedSumOptions } from './federated-sum';
export { buildHistogram, HISTOGRAM_OPTIONS, type HistogramOptions } from './histogram';
export { buildMean, MEAN_OPTIONS, type MeanOptions } from './mean';
export {
  buildTemperatureSensor,
  TEMPERATURE_SENSOR_OPTIONS,
  type TemperatureSensorOptions,
} from './temperature-sensor';
export { flagOf, resolveOptions, type LibraryPlan, type NamedOption, type OptionSpec } from './options';

/** The ready plans by name, with their descriptions and declared options; the CLI's `plans` command lists and builds them. */
export const PLAN_LIBRARY: Readonly<Record<string, LibraryPlan>> = Object.freeze({
  fedavg: definePlan(
    'FedAvg of a dense MLP classifier (local SGD via fold + value_and_grad, server SGD-momentum or Adam)',
    FEDAVG_OPTIONS,
    buildFedAvg,
  ),
  'temperature-sensor': definePlan(
    "TFF's temperature sensor example: fraction of clients whose max reading exceeds a rising threshold",
    TEMPERATURE_SENSOR_OPTIONS,
    buildTemperatureSensor,
  ),
  'federated-sum': definePlan(
    "TFF's federated sum of int32 values, plain or through secure_sum_bitwidth",
    FEDERATED_SUM_OPTIONS,
    buildFederatedSum,
  ),
  histogram: definePlan(
    'counts of int32 values per bin, plain or through secure_sum with max_input',
    HISTOGRAM_OPTIONS,
    buildHistogram,
  ),
  mean: definePlan('example-weighted mean of float32 values', MEAN_OPTIONS, buildMean),
});
