// The demo page's behaviour (web/demo.html): plain JavaScript over the global `Roundhouse` that
// /sdk/roundhouse-client.js defines. Join starts the SDK's client loop (`RoundhouseClient.run`); the page
// narrates each step by watching the client through the hooks the SDK takes: its `fetch` (check-ins and
// downloads), its example store (training starts), `beforeUpload` (training done) and `onOutcome`.
//
// For tests and curious readers, <body> carries the state: data-state is one of idle, starting,
// checking-in, working, uploading, completed, waiting, stopped, error; data-completed counts tasks done.
'use strict';

(() => {
  /** The collection the digits data belongs to: the FedAvg digits plan's `client_data.collection`. */
  const COLLECTION = 'digits';
  /** A device does not come straight back after a task; without a pause it could take a second task of a round. */
  const PAUSE_AFTER_TASK_MS = 3000;
  const PIXELS = 64;

  const $ = (id) => document.getElementById(id);
  const ui = {
    form: $('join-form'),
    population: $('population'),
    file: $('data-file'),
    maxTasks: $('max-tasks'),
    join: $('join'),
    leave: $('leave'),
    status: $('status'),
    backend: $('backend'),
    examples: $('examples'),
    completed: $('completed'),
    clientId: $('client-id'),
    digits: $('digits'),
    log: $('log'),
  };
  /** The server this page came from: the folder above /demo/ (so a path prefix in front is kept). */
  const server = new URL('../', window.location.href).href;
  const store = new Roundhouse.PageExampleStore();
  let client;
  let completed = 0;
  /** When `work` started and on how many examples, for the line logged when it is done. */
  let training = { startedAt: 0, examples: 0 };

  function log(text, kind = 'info') {
    const li = document.createElement('li');
    li.className = kind;
    const time = document.createElement('time');
    time.textContent = new Date().toLocaleTimeString();
    li.append(time, text);
    ui.log.append(li);
    ui.log.scrollTop = ui.log.scrollHeight;
  }

  function setState(state, text) {
    document.body.dataset.state = state;
    ui.status.textContent = text;
  }

  function formatBytes(n) {
    return n < 1024 ? `${n} B` : `${(n / 1024).toFixed(1)} KiB`;
  }

  function formatDuration(ms) {
    const s = Math.round(ms / 1000);
    return s < 90 ? `${s} s` : `${Math.floor(s / 60)} min ${s % 60} s`;
  }

  function isPath(url, pattern) {
    return pattern.test(new URL(url, server).pathname);
  }

  /** The page's local data: the CSV file the user picked, else the server's digits sample. */
  async function loadExamples() {
    const file = ui.file.files[0];
    let text;
    let source;
    if (file) {
      text = await file.text();
      source = file.name;
    } else {
      const res = await fetch('digits-sample.csv');
      if (!res.ok) throw new Error(`digits-sample.csv: HTTP ${res.status}`);
      text = await res.text();
      source = "the server's digits sample";
    }
    return { examples: Roundhouse.digitsExamplesFromCsv(text), source };
  }

  /** Draws each example as its 8x8 image, labelled. */
  function showDigits(examples) {
    const [x, y] = examples.leaves;
    ui.digits.replaceChildren();
    for (let i = 0; i < examples.count; i++) {
      const canvas = document.createElement('canvas');
      canvas.width = 8;
      canvas.height = 8;
      const ctx = canvas.getContext('2d');
      const image = ctx.createImageData(8, 8);
      for (let p = 0; p < PIXELS; p++) {
        const v = 255 - Math.round(x[i * PIXELS + p] * 255);
        image.data.set([v, v, v, 255], p * 4);
      }
      ctx.putImageData(image, 0, 0);
      const figure = document.createElement('figure');
      const caption = document.createElement('figcaption');
      caption.textContent = String(y[i]);
      figure.append(canvas, caption);
      ui.digits.append(figure);
    }
  }

  /**
   * The client's fetch, narrated: check-ins, assignments and downloads are logged as they happen. Responses
   * are cloned to be read, so the client gets them untouched.
   */
  async function narratedFetch(input, init) {
    const url = input instanceof Request ? input.url : String(input);
    if (isPath(url, /\/checkin$/)) setState('checking-in', 'checking in');
    if (isPath(url, /\/result$/)) setState('uploading', 'uploading');
    const res = await fetch(input, init);
    if (!res.ok) return res; // the client reports failures itself
    if (isPath(url, /\/checkin$/)) {
      const body = await res.clone().json();
      if (body.assignment) onAssignment(body.assignment);
    } else if (isPath(url, /\/client-plan$/)) {
      const bytes = (await res.clone().arrayBuffer()).byteLength;
      log(`Downloaded the client plan (${formatBytes(bytes)}); later tasks of this plan reuse it`);
    } else if (isPath(url, /\/broadcast$/)) {
      const bytes = (await res.clone().arrayBuffer()).byteLength;
      log(`Downloaded the round's broadcast, the current model (${formatBytes(bytes)})`);
    }
    return res;
  }

  function onAssignment(a) {
    log(`Checked in: assigned a task of round ${a.round} (plan ${a.plan_id}, attempt ${a.attempt})`);
    setState('working', `training, round ${a.round}`);
    // Without PUBLIC_URL the server builds these URLs from the address this page used, so they match; a
    // PUBLIC_URL set to another address does not, and the page's CSP (connect-src 'self') blocks them.
    const origin = new URL(a.client_plan_url).origin;
    if (origin !== window.location.origin) {
      log(
        `The server hands out URLs on ${origin} (its PUBLIC_URL), not on this page's origin, so this tab ` +
          `cannot fetch them: open the demo at ${origin}/demo/, or set PUBLIC_URL to this page's origin ` +
          `(or unset it, so that URLs follow the address each client uses).`,
        'warn',
      );
    }
  }

  /** The page's examples, noting when the client takes them: `work` starts right after. */
  const narratedStore = {
    async examples(collection, element, batchSize) {
      const examples = await store.examples(collection, element, batchSize);
      if (examples.count > 0) {
        log(`Training on ${examples.count} local examples (batches of ${batchSize})`);
        training = { startedAt: performance.now(), examples: examples.count };
      }
      return examples;
    },
  };

  function beforeUpload(assignment) {
    const ms = Math.round(performance.now() - training.startedAt);
    log(`Trained on ${training.examples} examples for round ${assignment.round} in ${ms} ms`);
    return true;
  }

  function onOutcome(outcome) {
    switch (outcome.kind) {
      case 'completed':
        completed++;
        ui.completed.textContent = String(completed);
        document.body.dataset.completed = String(completed);
        log(
          `Uploaded ${outcome.uploadBytes} bytes (gzip) for round ${outcome.assignment.round}: task completed`,
          'ok',
        );
        setState('completed', `completed round ${outcome.assignment.round}`);
        break;
      case 'retry': {
        const wait = formatDuration(outcome.waitMs);
        const at = new Date(Date.now() + outcome.waitMs).toLocaleTimeString();
        log(`No task for now: retry in ${wait} (at ${at}), inside the server's retry window`);
        setState('waiting', `next check-in at ${at}`);
        break;
      }
      case 'late':
        log(`Round ${outcome.assignment.round} closed before the upload arrived: it was not counted`, 'warn');
        break;
      case 'dropped':
        log(`Dropped the task of round ${outcome.assignment.round}`, 'warn');
        break;
      case 'abandoned':
        log(
          outcome.reason === 'no-examples'
            ? `The plan asks for examples this tab does not hold (it holds "${COLLECTION}"): task abandoned`
            : `The round's deadline passed (${outcome.reason}): task abandoned`,
          'warn',
        );
        break;
    }
  }

  function onError(error) {
    log(`${error.message}; trying again after a pause`, 'error');
    setState('error', 'failed; will retry');
  }

  function setJoined(joined) {
    ui.join.disabled = joined;
    ui.leave.disabled = !joined;
    for (const input of [ui.population, ui.file, ui.maxTasks]) input.disabled = joined;
  }

  async function join(event) {
    event.preventDefault();
    setJoined(true);
    setState('starting', 'starting');
    try {
      const backend = await Roundhouse.initBrowserBackend();
      ui.backend.textContent = backend === 'wasm' ? 'WebAssembly' : 'CPU (JavaScript)';
      log(`TensorFlow.js backend: ${backend}`);

      const { examples, source } = await loadExamples();
      store.set(COLLECTION, examples);
      ui.examples.textContent = String(examples.count);
      ui.examples.title = `from ${source}`;
      showDigits(examples);
      log(`Loaded ${examples.count} local examples from ${source}`);

      const population = ui.population.value.trim();
      client = new Roundhouse.RoundhouseClient({
        server,
        population,
        store: narratedStore,
        fetch: narratedFetch,
        beforeUpload,
      });
      ui.clientId.textContent = `${client.clientId.slice(0, 8)}…`;
      ui.clientId.title = client.clientId;
      log(`Joining population "${population}" as client ${client.clientId.slice(0, 8)}…`);

      const maxTasks = ui.maxTasks.value ? Number(ui.maxTasks.value) : undefined;
      await client.run({ onOutcome, onError, maxTasks, pauseAfterTaskMs: PAUSE_AFTER_TASK_MS });
      if (maxTasks !== undefined && document.body.dataset.state !== 'stopped') {
        log(`Stopped after ${maxTasks} task${maxTasks === 1 ? '' : 's'}, as asked`);
      }
    } catch (error) {
      setState('error', 'failed');
      log(error.message, 'error');
    } finally {
      setJoined(false);
    }
  }

  function leave() {
    client?.stop();
    setState('stopped', 'left');
    log('Left the population');
  }

  ui.form.addEventListener('submit', join);
  ui.leave.addEventListener('click', leave);
})();
