// sluice's web UI script: the time zone toggle, confirmations, batch
// actions, the live run page (graph statuses, block panel, log viewer) and
// queue reordering. It talks to the REST API with the session cookie and
// the page's CSRF token, and follows Server-Sent Events. No inline handlers:
// the pages are served with `Content-Security-Policy: default-src 'self'`.
(() => {
  'use strict';

  const $ = (selector, root = document) => root.querySelector(selector);
  const $$ = (selector, root = document) => Array.from(root.querySelectorAll(selector));
  const TERMINAL = ['completed', 'failed', 'cancelled'];
  const BLOCK_TERMINAL = TERMINAL.concat(['upstream_failed', 'condition_failed']);
  /** Lines the log viewer keeps; older ones are in the raw download. */
  const MAX_LOG_LINES = 10000;

  function csrf() {
    const meta = $('meta[name="csrf-token"]');
    return meta ? meta.content : '';
  }

  function notice(text, isError) {
    const box = $('#notice');
    if (!box) return;
    box.textContent = text;
    box.hidden = false;
    box.classList.toggle('error', Boolean(isError));
    clearTimeout(notice.timer);
    notice.timer = setTimeout(() => { box.hidden = true; }, 10000);
  }

  /** A JSON call to the API; rejects with the server's message and hint. */
  async function api(method, url, body) {
    const response = await fetch(url, {
      method,
      credentials: 'same-origin',
      headers: {
        'Accept': 'application/json',
        'Content-Type': 'application/json',
        'X-CSRF-Token': csrf(),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    let data = null;
    try { data = await response.json(); } catch (_) { data = null; }
    if (!response.ok) {
      const error = data && data.error;
      const message = error
        ? error.message + (error.hint ? ' (' + error.hint + ')' : '')
        : method + ' ' + url + ' failed with HTTP ' + response.status;
      throw new Error(message);
    }
    return data;
  }

  async function fetchPage(url) {
    const response = await fetch(url, { credentials: 'same-origin' });
    if (!response.ok) throw new Error('GET ' + url + ' failed with HTTP ' + response.status);
    return new DOMParser().parseFromString(await response.text(), 'text/html');
  }

  function plural(count, one, many) {
    return count + ' ' + (count === 1 ? one : (many || one + 's'));
  }

  function listed(items, describe) {
    const shown = items.slice(0, 10).map(describe).join(', ');
    return items.length > 10 ? shown + ' and ' + (items.length - 10) + ' more' : shown;
  }

  // ---- Time zones: every <time datetime> shows UTC or local time.
  const ZONE_KEY = 'sluice.time-zone';

  function wantsLocal() {
    try { return window.localStorage.getItem(ZONE_KEY) === 'local'; } catch (_) { return false; }
  }

  function pad(number) { return String(number).padStart(2, '0'); }

  function formatTime(date, local) {
    if (!local) {
      return date.getUTCFullYear() + '-' + pad(date.getUTCMonth() + 1) + '-' + pad(date.getUTCDate()) +
        ' ' + pad(date.getUTCHours()) + ':' + pad(date.getUTCMinutes()) + ':' + pad(date.getUTCSeconds()) + ' UTC';
    }
    const part = new Intl.DateTimeFormat(undefined, { timeZoneName: 'short' })
      .formatToParts(date).find((p) => p.type === 'timeZoneName');
    return date.getFullYear() + '-' + pad(date.getMonth() + 1) + '-' + pad(date.getDate()) +
      ' ' + pad(date.getHours()) + ':' + pad(date.getMinutes()) + ':' + pad(date.getSeconds()) +
      ' ' + (part ? part.value : 'local');
  }

  function applyZone(root) {
    const local = wantsLocal();
    $$('time[datetime]', root || document).forEach((element) => {
      const date = new Date(element.getAttribute('datetime'));
      if (Number.isNaN(date.getTime())) return;
      element.textContent = formatTime(date, local);
      element.title = formatTime(date, !local);
    });
    const toggle = $('#tz-toggle');
    if (toggle) {
      toggle.textContent = local ? 'Times: local' : 'Times: UTC';
      toggle.setAttribute('aria-pressed', String(local));
    }
  }

  function initZoneToggle() {
    const toggle = $('#tz-toggle');
    if (toggle) {
      toggle.addEventListener('click', () => {
        try { window.localStorage.setItem(ZONE_KEY, wantsLocal() ? 'utc' : 'local'); } catch (_) { /* kept for this page only */ }
        applyZone(document);
      });
    }
    applyZone(document);
  }

  // ---- The confirmation dialog: says exactly what will happen.
  function confirmAction(text) {
    const dialog = $('#confirm');
    return new Promise((resolve) => {
      if (!dialog || typeof dialog.showModal !== 'function') {
        resolve(false);
        return;
      }
      $('#confirm-text').textContent = text;
      const yes = $('#confirm-yes');
      const no = $('#confirm-no');
      const finish = (answer) => {
        yes.removeEventListener('click', onYes);
        no.removeEventListener('click', onNo);
        dialog.removeEventListener('cancel', onCancel);
        if (dialog.open) dialog.close();
        resolve(answer);
      };
      const onYes = () => finish(true);
      const onNo = () => finish(false);
      const onCancel = (event) => { event.preventDefault(); finish(false); };
      yes.addEventListener('click', onYes);
      no.addEventListener('click', onNo);
      dialog.addEventListener('cancel', onCancel);
      dialog.showModal();
      no.focus();
    });
  }

  /** Runs an action after confirmation, reporting failures. */
  async function confirmed(text, action) {
    if (!(await confirmAction(text))) return;
    try {
      await action();
    } catch (error) {
      notice(error.message, true);
    }
  }

  // ---- Runs tables (runs page, pipeline page): selection and batches.
  function selectedRuns() {
    return $$('input.select-run:checked').map((input) => {
      const row = input.closest('tr');
      return { id: input.value, pipeline: row.dataset.pipeline, status: row.dataset.status };
    });
  }

  const describeRun = (run) => run.id + ' (' + run.pipeline + ', ' + run.status + ')';

  function batchOutcome(result, verb) {
    const done = result.runs.filter((item) => !item.error).length;
    let text = verb + ' ' + plural(done, 'run') + '.';
    if (result.skipped.length) text += ' Skipped ' + plural(result.skipped.length, 'run') + ': ' + result.skipped.join(', ') + '.';
    const failed = result.runs.filter((item) => item.error);
    if (failed.length) text += ' Failed: ' + failed.map((item) => item.id + ': ' + item.error.message).join('; ');
    return text;
  }

  async function runBatch(action, ids, verb) {
    const body = { action, ids };
    if (action === 'retry') body.mode = 'incomplete';
    const result = await api('POST', '/api/pipeline_runs/batch', body);
    try { sessionStorage.setItem('sluice.notice', batchOutcome(result, verb)); } catch (_) { /* shown nowhere */ }
    window.location.reload();
  }

  /** The runs a filter selects now, from a dry run. */
  async function dryRun(action, filter) {
    const body = { action, filter, dry_run: true };
    if (action === 'retry') body.mode = 'incomplete';
    const result = await api('POST', '/api/pipeline_runs/batch', body);
    return result.runs;
  }

  function initBatches() {
    const retry = $('#retry-selected');
    if (retry) {
      retry.addEventListener('click', () => {
        const runs = selectedRuns();
        if (!runs.length) { notice('Select runs first, with the boxes in the first column.', true); return; }
        confirmed(
          'Retry ' + plural(runs.length, 'run') + ': ' + listed(runs, describeRun) +
          '. Each finished run gets a new attempt that runs again the block runs that did not complete; ' +
          'completed block runs are reused. Runs that are not finished are skipped.',
          () => runBatch('retry', runs.map((run) => run.id), 'Retried'));
      });
    }
    const cancel = $('#cancel-selected');
    if (cancel) {
      cancel.addEventListener('click', () => {
        const runs = selectedRuns();
        if (!runs.length) { notice('Select runs first, with the boxes in the first column.', true); return; }
        confirmed(
          'Cancel ' + plural(runs.length, 'run') + ': ' + listed(runs, describeRun) +
          '. Their running block runs are stopped and the rest will not run. Finished runs are skipped.',
          () => runBatch('cancel', runs.map((run) => run.id), 'Cancelled'));
      });
    }
    const page = $('#pipeline');
    const retryAll = $('#retry-incomplete-all');
    if (page && retryAll) {
      retryAll.addEventListener('click', async () => {
        const name = page.dataset.pipeline;
        try {
          const runs = await dryRun('retry', { pipeline: [name], status: ['failed', 'cancelled'] });
          if (!runs.length) { notice('No failed or cancelled run of ' + name + ' to retry.'); return; }
          await confirmed(
            'Retry all incomplete block runs of ' + plural(runs.length, 'run') + ' of ' + name + ': ' +
            listed(runs, describeRun) + '. Each gets a new attempt that runs again the block runs that did not complete.',
            () => runBatch('retry', runs.map((run) => run.id), 'Retried'));
        } catch (error) { notice(error.message, true); }
      });
    }
    const cancelAll = $('#cancel-all-running');
    if (page && cancelAll) {
      cancelAll.addEventListener('click', async () => {
        const name = page.dataset.pipeline;
        try {
          const runs = await dryRun('cancel', { pipeline: [name], status: ['initial', 'running'] });
          if (!runs.length) { notice('No run of ' + name + ' is running or waiting.'); return; }
          await confirmed(
            'Cancel all ' + plural(runs.length, 'running run') + ' of ' + name + ': ' + listed(runs, describeRun) +
            '. Their running block runs are stopped and the rest will not run.',
            () => runBatch('cancel', runs.map((run) => run.id), 'Cancelled'));
        } catch (error) { notice(error.message, true); }
      });
    }
  }

  /** Live status of the rows of a runs table. */
  function initRunsLive() {
    if (!$('table#runs') || $('#run')) return;
    const events = new EventSource('/api/events');
    events.addEventListener('run', (event) => {
      const data = JSON.parse(event.data);
      $$('tr[data-run-id]').forEach((row) => {
        if (row.dataset.runId !== data.run_id) return;
        row.dataset.status = data.status;
        const cell = $('span.status', row);
        if (cell) { cell.dataset.status = data.status; cell.textContent = data.status; }
      });
    });
    window.addEventListener('pagehide', () => events.close());
  }

  // ---- ANSI colours: SGR sequences become spans with classes.
  const SGR = /\x1b\[([0-9;]*)m/g;
  const OTHER_ESCAPES = /\x1b\[[0-9;?]*[A-Za-ln-z]|\x1b[()][A-Za-z0-9]|\x1b[=>]/g;

  function applySgr(state, parameters) {
    const codes = parameters === '' ? [0] : parameters.split(';').map(Number);
    for (let i = 0; i < codes.length; i += 1) {
      const code = codes[i];
      if (code === 0) { state.fg = null; state.bg = null; state.bold = false; state.dim = false; state.italic = false; state.underline = false; }
      else if (code === 1) state.bold = true;
      else if (code === 2) state.dim = true;
      else if (code === 3) state.italic = true;
      else if (code === 4) state.underline = true;
      else if (code === 22) { state.bold = false; state.dim = false; }
      else if (code === 23) state.italic = false;
      else if (code === 24) state.underline = false;
      else if (code >= 30 && code <= 37) state.fg = code - 30;
      else if (code === 39) state.fg = null;
      else if (code >= 40 && code <= 47) state.bg = code - 40;
      else if (code === 49) state.bg = null;
      else if (code >= 90 && code <= 97) state.fg = code - 90 + 8;
      else if (code >= 100 && code <= 107) state.bg = code - 100 + 8;
      else if (code === 38 || code === 48) {
        // 256 colours keep the first 16; true colour is dropped.
        if (codes[i + 1] === 5) {
          const colour = codes[i + 2];
          if (colour < 16) { if (code === 38) state.fg = colour; else state.bg = colour; }
          i += 2;
        } else if (codes[i + 1] === 2) {
          i += 4;
        }
      }
    }
  }

  function classesOf(state) {
    const classes = [];
    if (state.fg !== null) classes.push('ansi-fg-' + state.fg);
    if (state.bg !== null) classes.push('ansi-bg-' + state.bg);
    if (state.bold) classes.push('ansi-bold');
    if (state.dim) classes.push('ansi-dim');
    if (state.italic) classes.push('ansi-italic');
    if (state.underline) classes.push('ansi-underline');
    return classes;
  }

  function renderLine(text, stream) {
    const line = document.createElement('span');
    line.className = 'log-line' + (stream === 'stderr' ? ' stderr' : stream === 'sluice' ? ' from-sluice' : '');
    let visible = String(text);
    if (visible.includes('\r')) {
      const parts = visible.split('\r').filter((part) => part !== '');
      visible = parts.length ? parts[parts.length - 1] : '';
    }
    visible = visible.replace(OTHER_ESCAPES, '');
    const state = { fg: null, bg: null, bold: false, dim: false, italic: false, underline: false };
    let last = 0;
    const push = (segment) => {
      const clean = segment.replace(/\x1b/g, '');
      if (!clean) return;
      const classes = classesOf(state);
      if (classes.length) {
        const span = document.createElement('span');
        span.className = classes.join(' ');
        span.textContent = clean;
        line.appendChild(span);
      } else {
        line.appendChild(document.createTextNode(clean));
      }
    };
    SGR.lastIndex = 0;
    let match = SGR.exec(visible);
    while (match) {
      push(visible.slice(last, match.index));
      applySgr(state, match[1]);
      last = SGR.lastIndex;
      match = SGR.exec(visible);
    }
    push(visible.slice(last));
    return line;
  }

  // ---- The log viewer: live lines, follow mode, search.
  let logStream = null;

  function closeLog() {
    if (logStream) { logStream.close(); logStream = null; }
  }

  function matchesSearch(line, needle) {
    return !needle || line.textContent.toLowerCase().includes(needle);
  }

  function initLog() {
    closeLog();
    const log = $('#log');
    if (!log || !log.dataset.stream) return;
    const follow = $('#follow');
    const search = $('#log-search');
    const state = $('#log-state');
    const needle = () => (search ? search.value.trim().toLowerCase() : '');
    let dropped = 0;
    let scrollPending = false;
    const scroll = () => {
      if (!follow || !follow.checked || scrollPending) return;
      scrollPending = true;
      window.requestAnimationFrame(() => { scrollPending = false; log.scrollTop = log.scrollHeight; });
    };
    const say = (text) => { if (state) state.textContent = text; };
    const append = (line) => {
      const wanted = needle();
      line.classList.toggle('hidden', !matchesSearch(line, wanted));
      line.classList.toggle('match', Boolean(wanted) && matchesSearch(line, wanted));
      log.appendChild(line);
      const lines = log.getElementsByClassName('log-line');
      while (lines.length > MAX_LOG_LINES) {
        lines[0].remove();
        dropped += 1;
      }
      if (dropped) say(dropped + ' older lines are not shown; the raw log has them all.');
      scroll();
    };
    if (search) {
      search.addEventListener('input', () => {
        const wanted = needle();
        let found = 0;
        $$('.log-line', log).forEach((line) => {
          const hit = matchesSearch(line, wanted);
          line.classList.toggle('hidden', !hit);
          line.classList.toggle('match', Boolean(wanted) && hit);
          if (wanted && hit) found += 1;
        });
        say(wanted ? plural(found, 'line') + ' match.' : '');
      });
    }
    if (follow) follow.addEventListener('change', scroll);
    let tries = 0;
    const stream = new EventSource(log.dataset.stream);
    logStream = stream;
    stream.addEventListener('try', (event) => {
      const data = JSON.parse(event.data);
      tries += 1;
      if (tries > 1 || data.try_number > 1) {
        const marker = document.createElement('span');
        marker.className = 'log-try';
        marker.textContent = '── try ' + data.try_number + ' ──';
        log.appendChild(marker);
      }
    });
    stream.addEventListener('line', (event) => {
      const data = JSON.parse(event.data);
      append(renderLine(data.text, data.stream));
    });
    stream.addEventListener('end', (event) => {
      const data = JSON.parse(event.data);
      stream.close();
      if (logStream === stream) logStream = null;
      say('The log is complete (' + data.status + ').');
    });
    stream.addEventListener('error', () => {
      if (stream.readyState === EventSource.CLOSED) say('The live log stopped; reload the page to follow it again.');
    });
  }

  // ---- The run page: graph, panel, actions, live statuses.
  function initRunPage() {
    const run = $('#run');
    if (!run) return;
    const runId = run.dataset.runId;
    const attempt = Number(run.dataset.attempt);
    const latest = Number(run.dataset.latestAttempt);
    const status = () => ($('#run-status') ? $('#run-status').dataset.status : '');
    const terminal = () => TERMINAL.includes(status());
    const selectedBlock = () => { const node = $('#dag g.node.selected'); return node ? node.dataset.block : null; };

    const updateButtons = () => {
      const done = terminal();
      const cancel = $('#cancel-run');
      if (cancel) cancel.disabled = done;
      ['#retry-incomplete', '#rerun-all'].forEach((selector) => {
        const button = $(selector);
        if (button) button.disabled = !done;
      });
      const from = $('#retry-from');
      if (from) {
        const block = selectedBlock();
        from.disabled = !done || !block;
        from.textContent = block ? 'Retry from ' + block : 'Retry from selected block';
      }
    };

    const setNodeStatus = (node, value) => {
      node.dataset.status = value;
      node.setAttribute('aria-label', 'Block ' + node.dataset.block + ', ' + value);
      const label = $('text.status', node);
      if (label) label.textContent = value;
    };

    const loadPanel = async (block) => {
      const slot = $('#block-panel-slot');
      if (!slot) return;
      try {
        const response = await fetch('/runs/' + encodeURIComponent(runId) + '/panel?block=' +
          encodeURIComponent(block) + '&attempt=' + attempt, { credentials: 'same-origin' });
        if (!response.ok) throw new Error('The block panel could not be loaded (HTTP ' + response.status + ').');
        closeLog();
        slot.innerHTML = await response.text();
        applyZone(slot);
        initLog();
      } catch (error) {
        notice(error.message, true);
      }
    };

    const select = (block) => {
      $$('#dag g.node').forEach((node) => node.classList.toggle('selected', node.dataset.block === block));
      const url = new URL(window.location.href);
      url.searchParams.set('attempt', String(attempt));
      url.searchParams.set('block', block);
      window.history.replaceState(null, '', url);
      updateButtons();
      loadPanel(block);
    };

    $$('#dag g.node').forEach((node) => {
      node.addEventListener('click', () => select(node.dataset.block));
      node.addEventListener('keydown', (event) => {
        if (event.key === 'Enter' || event.key === ' ') {
          event.preventDefault();
          select(node.dataset.block);
        }
      });
    });

    const pipeline = run.dataset.pipeline;
    const retry = (mode, block) => api('POST', '/api/pipeline_runs/' + encodeURIComponent(runId) + '/retry',
      block ? { mode, block } : { mode })
      .then((result) => {
        const next = result && result.pipeline_run ? result.pipeline_run.attempt : latest + 1;
        window.location.assign('/runs/' + encodeURIComponent(runId) + '?attempt=' + next);
      });
    const bind = (selector, handler) => { const button = $(selector); if (button) button.addEventListener('click', handler); };
    bind('#cancel-run', () => confirmed(
      'Cancel run ' + runId + ' of ' + pipeline + ': its running block runs are stopped and the block runs that have not started will not run.',
      () => api('POST', '/api/pipeline_runs/' + encodeURIComponent(runId) + '/cancel').then(() => refresh())));
    bind('#retry-incomplete', () => confirmed(
      'Retry run ' + runId + ' of ' + pipeline + ': attempt ' + (latest + 1) +
      ' runs again every block run that did not complete; completed block runs are reused.',
      () => retry('incomplete')));
    bind('#rerun-all', () => confirmed(
      'Rerun all of run ' + runId + ' of ' + pipeline + ': attempt ' + (latest + 1) + ' runs every block again.',
      () => retry('all')));
    bind('#retry-from', () => {
      const block = selectedBlock();
      if (!block) { notice('Select a block on the graph first.', true); return; }
      confirmed(
        'Retry run ' + runId + ' of ' + pipeline + ' from block ' + block + ': attempt ' + (latest + 1) + ' runs ' +
        block + ' and every block downstream of it again; the blocks upstream are reused.',
        () => retry('from_block', block));
    });

    // A fresh copy of the page gives what events do not carry: bar
    // lengths, errors, and statuses written by another server.
    let refreshing = false;
    const refresh = async () => {
      if (refreshing) return;
      refreshing = true;
      try {
        const url = new URL(window.location.href);
        url.searchParams.delete('block');
        const fresh = await fetchPage(url.toString());
        $$('#dag g.node', fresh).forEach((node) => {
          const mine = $$('#dag g.node').find((candidate) => candidate.dataset.block === node.dataset.block);
          if (mine && mine.dataset.status !== node.dataset.status) setNodeStatus(mine, node.dataset.status);
        });
        // The summary (status, flags, times, duration), the attempts and
        // the timeline are replaced whole; the errors appear or go.
        ['#run p.summary', '#attempt-switcher', '.timeline .scroll'].forEach((selector) => {
          const theirs = $(selector, fresh);
          const mine = $(selector);
          if (theirs && mine && theirs.innerHTML !== mine.innerHTML) {
            mine.innerHTML = theirs.innerHTML;
            applyZone(mine);
          }
        });
        const freshErrors = $('#errors', fresh);
        const mineErrors = $('#errors');
        if (freshErrors && mineErrors) {
          mineErrors.innerHTML = freshErrors.innerHTML;
        } else if (freshErrors) {
          run.parentNode.insertBefore(document.importNode(freshErrors, true), run);
        } else if (mineErrors) {
          mineErrors.remove();
        }
        // An open block panel whose block has ended since it was loaded is
        // loaded again, for its tries, outputs, data and artifacts.
        const panel = $('#block-panel');
        if (panel) {
          const node = $$('#dag g.node', fresh).find((candidate) => candidate.dataset.block === panel.dataset.block);
          if (node && node.dataset.status !== panel.dataset.loadedStatus && BLOCK_TERMINAL.includes(node.dataset.status)) {
            await loadPanel(panel.dataset.block);
          }
        }
        updateButtons();
      } catch (error) {
        notice(error.message, true);
      } finally {
        refreshing = false;
      }
    };
    let refreshTimer = null;
    const refreshSoon = () => { clearTimeout(refreshTimer); refreshTimer = setTimeout(refresh, 400); };

    const events = new EventSource('/api/events?run=' + encodeURIComponent(runId));
    events.addEventListener('block_run', (event) => {
      const data = JSON.parse(event.data);
      if (data.attempt === attempt) {
        $$('#dag g.node').forEach((node) => { if (node.dataset.block === data.block) setNodeStatus(node, data.status); });
        const panel = $('#block-panel');
        if (panel && panel.dataset.block === data.block) {
          panel.dataset.status = data.status;
          const label = $('#panel-title span.status');
          if (label) { label.dataset.status = data.status; label.textContent = data.status; }
        }
      }
      refreshSoon();
    });
    events.addEventListener('run', (event) => {
      const data = JSON.parse(event.data);
      const label = $('#run-status');
      if (label) { label.dataset.status = data.status; label.textContent = data.status; }
      updateButtons();
      refreshSoon();
    });
    events.addEventListener('lagged', refreshSoon);
    // Events come from this server only; a slow poll covers the others.
    const poll = setInterval(() => { if (!terminal()) refresh(); }, 10000);
    window.addEventListener('pagehide', () => { events.close(); clearInterval(poll); closeLog(); });

    updateButtons();
    initLog();
  }

  // ---- The queue page: drag and drop, move buttons, cancel, live refresh.
  function initQueue() {
    const list = $('ol#queue');
    if (!list) return;
    let dragging = null;
    let busy = false;
    const items = () => $$('li[data-block-run-id]', list);
    const clearMarks = () => $$('li.drop-before, li.drop-after', list)
      .forEach((item) => item.classList.remove('drop-before', 'drop-after'));
    const below = (event, item) => {
      const box = item.getBoundingClientRect();
      return event.clientY > box.top + box.height / 2;
    };

    const refresh = async (focusId, focusClass) => {
      try {
        const fresh = await fetchPage('/queue');
        const freshList = $('ol#queue', fresh);
        if (!freshList) return;
        const checked = new Set($$('input.select-queued:checked', list).map((input) => input.value));
        list.innerHTML = freshList.innerHTML;
        $$('input.select-queued', list).forEach((input) => { input.checked = checked.has(input.value); });
        applyZone(list);
        if (focusId) {
          const item = items().find((candidate) => candidate.dataset.blockRunId === focusId);
          const button = item && $(focusClass || 'button.move-up', item);
          if (button) button.focus();
        }
      } catch (error) {
        notice(error.message, true);
      }
    };

    const persist = async (item, focusClass) => {
      const to = items().indexOf(item) + 1;
      busy = true;
      try {
        await api('POST', '/api/queue/move', { block_run_id: item.dataset.blockRunId, to });
      } catch (error) {
        notice(error.message, true);
      } finally {
        busy = false;
        await refresh(item.dataset.blockRunId, focusClass);
      }
    };

    list.addEventListener('dragstart', (event) => {
      const item = event.target.closest('li[data-block-run-id]');
      if (!item || item.getAttribute('draggable') !== 'true') return;
      dragging = item;
      item.classList.add('dragging');
      event.dataTransfer.effectAllowed = 'move';
      event.dataTransfer.setData('text/plain', item.dataset.blockRunId);
    });
    list.addEventListener('dragover', (event) => {
      const item = event.target.closest('li[data-block-run-id]');
      if (!item) return;
      event.preventDefault();
      if (event.dataTransfer) event.dataTransfer.dropEffect = 'move';
      clearMarks();
      if (item !== dragging) item.classList.add(below(event, item) ? 'drop-after' : 'drop-before');
    });
    list.addEventListener('dragleave', (event) => {
      if (!list.contains(event.relatedTarget)) clearMarks();
    });
    list.addEventListener('drop', (event) => {
      const target = event.target.closest('li[data-block-run-id]');
      const id = event.dataTransfer ? event.dataTransfer.getData('text/plain') : '';
      const moving = dragging || items().find((item) => item.dataset.blockRunId === id);
      event.preventDefault();
      clearMarks();
      if (dragging) dragging.classList.remove('dragging');
      dragging = null;
      if (!target || !moving || target === moving) return;
      if (below(event, target)) target.after(moving); else target.before(moving);
      persist(moving);
    });
    list.addEventListener('dragend', () => {
      clearMarks();
      if (dragging) dragging.classList.remove('dragging');
      dragging = null;
    });
    list.addEventListener('click', (event) => {
      const button = event.target.closest('button.move-up, button.move-down');
      if (!button) return;
      const item = button.closest('li[data-block-run-id]');
      const up = button.classList.contains('move-up');
      const sibling = up ? item.previousElementSibling : item.nextElementSibling;
      if (!sibling) return;
      if (up) sibling.before(item); else sibling.after(item);
      persist(item, up ? 'button.move-up' : 'button.move-down');
    });

    const cancel = $('#cancel-selected-queued');
    if (cancel) {
      cancel.addEventListener('click', () => {
        const chosen = $$('input.select-queued:checked', list).map((input) => input.closest('li'));
        if (!chosen.length) { notice('Select queued tries first, with their boxes.', true); return; }
        const runs = [];
        chosen.forEach((item) => {
          if (!runs.some((run) => run.id === item.dataset.runId)) {
            runs.push({ id: item.dataset.runId, pipeline: item.dataset.pipeline, status: 'running' });
          }
        });
        confirmed(
          'Cancel ' + plural(runs.length, 'run') + ' (the runs of the ' +
          plural(chosen.length, 'selected queued try', 'selected queued tries') + '): ' +
          listed(runs, (run) => run.id + ' (' + run.pipeline + ')') +
          '. Their running block runs are stopped and the rest will not run.',
          async () => {
            const result = await api('POST', '/api/pipeline_runs/batch', { action: 'cancel', ids: runs.map((run) => run.id) });
            notice(batchOutcome(result, 'Cancelled'));
            await refresh();
          });
      });
    }

    let timer = null;
    const refreshSoon = () => {
      clearTimeout(timer);
      timer = setTimeout(() => { if (dragging || busy) refreshSoon(); else refresh(); }, 500);
    };
    const events = new EventSource('/api/events');
    events.addEventListener('block_run', refreshSoon);
    events.addEventListener('run', refreshSoon);
    events.addEventListener('lagged', refreshSoon);
    window.addEventListener('pagehide', () => events.close());
  }

  function showStoredNotice() {
    try {
      const text = sessionStorage.getItem('sluice.notice');
      if (text) { sessionStorage.removeItem('sluice.notice'); notice(text); }
    } catch (_) { /* no storage: nothing to show */ }
  }

  function start() {
    initZoneToggle();
    showStoredNotice();
    initBatches();
    initRunsLive();
    initRunPage();
    initQueue();
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();
})();
