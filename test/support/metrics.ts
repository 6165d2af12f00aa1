/** A metric of the API process at `url`, summed over the series named exactly `name`; 0 when it has none. */
export async function apiMetric(url: string, name: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  return text
    .split('\n')
    .filter((line) => line.startsWith(`${name} `))
    .reduce((sum, line) => sum + Number(line.slice(name.length + 1)), 0);
}
