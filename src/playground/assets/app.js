// zanzi playground: the page's behaviour. Plain JavaScript, no libraries, no network beyond
// the server that served it. Every call to the store goes through the HTTP API with the
// preshared key kept in this tab's session storage.
'use strict';

const KEY = 'zanzi-key';
const HAS = 'PERMISSIONSHIP_HAS_PERMISSION';
const NO = 'PERMISSIONSHIP_NO_PERMISSION';
const CONDITIONAL = 'PERMISSIONSHIP_CONDITIONAL_PERMISSION';
const $ = (id) => document.getElementById(id);

// ---- calling the API ----

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

function storedKey() {
  return sessionStorage.getItem(KEY) || '';
}

async function post(path, body, key = storedKey()) {
  const response = await fetch(path, {
    method: 'POST',
    headers: { Authorization: 'Bearer ' + key, 'Content-Type': 'application/json' },
    body: JSON.stringify(body || {}),
  });
  const text = await response.text();
  if (!response.ok) {
    let message = text;
    try {
      message = JSON.parse(text).message || text;
    } catch (_) { /* not JSON: keep the text */ }
    if (response.status === 401 && key === storedKey()) {
      signOut('the server refused the preshared key');
    }
    throw new ApiError(response.status, message);
  }
  return text;
}

async function call(path, body) {
  return JSON.parse(await post(path, body));
}

/** A streamed answer's `result` objects (one JSON object per line). */
async function stream(path, body) {
  const text = await post(path, body);
  const results = [];
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    const value = JSON.parse(line);
    if (value.error) throw new ApiError(200, value.error.message);
    results.push(value.result);
  }
  return results;
}

function plural(count, noun) {
  return `${count} ${noun}${count === 1 ? '' : 's'}`;
}

function setResult(element, text, kind) {
  element.textContent = text;
  element.className = 'result' + (kind ? ' ' + kind : '');
}

function status(text) {
  $('status').textContent = text;
}

// ---- names and relationships as text ----

function parseObject(text, what) {
  const match = /^([^:#@\s]+):([^:#@\s]+)$/.exec(text.trim());
  if (!match) throw new Error(`${what} must look like type:id, not \`${text}\``);
  return { objectType: match[1], objectId: match[2] };
}

function parseSubject(text, what) {
  const [object, relation] = text.trim().split('#');
  const subject = { object: parseObject(object, what) };
  if (relation) subject.optionalRelation = relation;
  return subject;
}

function objectText(o) {
  return `${o.objectType}:${o.objectId}`;
}

function subjectText(s) {
  return objectText(s.object) + (s.optionalRelation ? '#' + s.optionalRelation : '');
}

function relationshipText(r) {
  let text = `${objectText(r.resource)}#${r.relation}@${subjectText(r.subject)}`;
  if (r.optionalCaveat) {
    const context = r.optionalCaveat.context;
    text += `[${r.optionalCaveat.caveatName}${context && Object.keys(context).length ? ':' + JSON.stringify(context) : ''}]`;
  }
  if (r.optionalExpiresAt) text += `[expiration:${r.optionalExpiresAt}]`;
  return text;
}

/** Splits `head[a][b:{...}]` into the head and the bracketed parts (brackets may nest). */
function bracketParts(text) {
  const start = text.indexOf('[');
  if (start < 0) return [text, []];
  const parts = [];
  let depth = 0;
  let from = -1;
  for (let i = start; i < text.length; i++) {
    const c = text[i];
    if (c === '[' || c === '{') {
      if (depth === 0) from = i + 1;
      depth++;
    } else if (c === ']' || c === '}') {
      depth--;
      if (depth === 0) parts.push(text.slice(from, i));
    } else if (depth === 0 && !/\s/.test(c)) {
      throw new Error(`unexpected \`${c}\` after the subject`);
    }
  }
  if (depth !== 0) throw new Error('unbalanced brackets');
  return [text.slice(0, start), parts];
}

/** `doc:1#viewer@user:ann[caveat:{...}][expiration:...]` as the API's relationship. */
function parseRelationship(text) {
  const [head, parts] = bracketParts(text.trim());
  const match = /^([^:#@\s]+:[^:#@\s]+)#([^@\s]+)@(\S+)$/.exec(head);
  if (!match) throw new Error(`\`${text}\` is not resource#relation@subject`);
  const relationship = {
    resource: parseObject(match[1], 'the resource'),
    relation: match[2],
    subject: parseSubject(match[3], 'the subject'),
  };
  for (const part of parts) {
    const colon = part.indexOf(':');
    const name = colon < 0 ? part : part.slice(0, colon);
    const rest = colon < 0 ? '' : part.slice(colon + 1);
    if (name === 'expiration') {
      relationship.optionalExpiresAt = rest;
    } else {
      relationship.optionalCaveat = { caveatName: name, context: rest ? JSON.parse(rest) : {} };
    }
  }
  return relationship;
}

// ---- the schema, read for each step's operation ----

/** Comments blanked out, line breaks kept. */
function withoutComments(text) {
  return text
    .replace(/\/\*[\s\S]*?\*\//g, (m) => m.replace(/[^\n]/g, ' '))
    .replace(/\/\/[^\n]*/g, '');
}

/** `type#member` → { kind, op, arrows } for every relation and permission of a schema. */
function schemaModel(text) {
  const model = new Map();
  const source = withoutComments(text || '');
  const definition = /definition\s+([a-z][a-z0-9_/]*)\s*\{/g;
  let found;
  while ((found = definition.exec(source))) {
    let depth = 1;
    let end = definition.lastIndex;
    while (end < source.length && depth > 0) {
      if (source[end] === '{') depth++;
      if (source[end] === '}') depth--;
      end++;
    }
    const body = source.slice(definition.lastIndex, end - 1);
    const statement = /\b(relation|permission)\s+([a-z][a-z0-9_]*)/g;
    const starts = [];
    let s;
    while ((s = statement.exec(body))) starts.push({ at: s.index, kind: s[1], name: s[2], after: statement.lastIndex });
    starts.forEach((st, i) => {
      const stop = i + 1 < starts.length ? starts[i + 1].at : body.length;
      const rest = body.slice(st.after, stop);
      const key = `${found[1]}#${st.name}`;
      if (st.kind === 'relation') {
        model.set(key, { kind: 'relation', op: 'relation', arrows: [] });
      } else {
        const expression = rest.replace(/^\s*=/, '').trim();
        model.set(key, { kind: 'permission', op: topOperation(expression), arrows: arrowsOf(expression) });
      }
    });
  }
  return model;
}

/** Whether `(` at 0 closes at the very end. */
function wrapped(text) {
  if (!text.startsWith('(') || !text.endsWith(')')) return false;
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    if (text[i] === '(') depth++;
    if (text[i] === ')') depth--;
    if (depth === 0 && i < text.length - 1) return false;
  }
  return true;
}

/** The outermost operation of a permission expression (`-` binds loosest, then `&`, then `+`). */
function topOperation(expression) {
  let text = expression.trim();
  while (wrapped(text)) text = text.slice(1, -1).trim();
  let depth = 0;
  const seen = new Set();
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '(') depth++;
    else if (c === ')') depth--;
    else if (depth === 0 && c === '-' && text[i + 1] !== '>') seen.add('-');
    else if (depth === 0 && (c === '&' || c === '+')) seen.add(c);
  }
  if (seen.has('-')) return 'exclusion';
  if (seen.has('&')) return 'intersection';
  if (seen.has('+')) return 'union';
  if (/^\w+\s*->\s*\w+$/.test(text) || /^\w+\s*\.\s*any\s*\(/.test(text)) return 'arrow';
  if (/^\w+\s*\.\s*all\s*\(/.test(text)) return 'all';
  if (text === 'nil') return 'nil';
  if (text === 'self') return 'self';
  return 'computed';
}

function arrowsOf(expression) {
  const arrows = [];
  for (const m of expression.matchAll(/(\w+)\s*->\s*(\w+)/g)) arrows.push({ tupleset: m[1], computed: m[2] });
  for (const m of expression.matchAll(/(\w+)\s*\.\s*(?:any|all)\s*\(\s*(\w+)\s*\)/g)) arrows.push({ tupleset: m[1], computed: m[2] });
  return arrows;
}

// ---- the explain tree (as `zanzi check --explain` prints it) ----

/** Protobuf's JSON duration (`"0.000012s"`) in nanoseconds. */
function durationNanos(text) {
  if (!text) return 0;
  const [whole, fraction = ''] = text.replace(/s$/, '').split('.');
  return Number(whole) * 1e9 + Number((fraction + '000000000').slice(0, 9));
}

/** Go's duration form, as zed and the CLI print it. */
function durationText(nanos) {
  if (nanos < 1000) return `${nanos}ns`;
  const [unit, scale, digits] = nanos < 1e6 ? ['µs', 1e3, 3] : nanos < 1e9 ? ['ms', 1e6, 6] : ['s', 1e9, 9];
  const whole = Math.floor(nanos / scale);
  const fraction = String(nanos % scale).padStart(digits, '0').replace(/0+$/, '');
  return `${whole}${fraction ? '.' + fraction : ''}${unit}`;
}

function span(cls, text) {
  const element = document.createElement('span');
  element.className = cls;
  element.textContent = text;
  return element;
}

function sourceLabel(step) {
  const source = step.source || '';
  if (source.startsWith('group-index:')) return '(group index)';
  if (source === 'zanzi:cycle') return '(cycle)';
  if (step.wasCachedResult) return '(cached)';
  return '';
}

function renderTree(info, pre) {
  pre.textContent = '';
  const model = schemaModel(info.schemaUsed);
  const root = info.check;
  const subject = subjectText(root.subject);
  const line = (prefix, parts) => {
    pre.append(prefix, ...parts, '\n');
  };
  const walk = (step, indent, last, isRoot) => {
    const connector = isRoot ? '' : indent + (last ? '└── ' : '├── ');
    const inner = isRoot ? '' : indent + (last ? '    ' : '│   ');
    const result = step.result;
    const muted = result !== HAS;
    const mark = result === HAS ? span('has', '✓') : result === NO ? span('no', '⨉') : span('cond', '?');
    const permission = step.permissionType === 'PERMISSION_TYPE_PERMISSION';
    const parts = [mark, ' ', span(muted ? 'faint' : '', objectText(step.resource)), ' ',
      span(muted ? 'faint' : permission ? 'perm' : 'rel', step.permission)];
    const entry = model.get(`${step.resource.objectType}#${step.permission}`);
    if (permission && entry && entry.kind === 'permission') parts.push(' ', span('faint', `[${entry.op}]`));
    const source = sourceLabel(step);
    if (source) parts.push(' ', span('cached', source));
    parts.push(` (${durationText(durationNanos(step.duration))})`);
    line(connector, parts);
    const children = [];
    if (step.caveatEvaluationInfo) children.push({ caveat: step.caveatEvaluationInfo });
    const steps = (step.subProblems && step.subProblems.traces) || [];
    for (const s of steps) children.push({ step: s });
    if (!steps.length && result === HAS) children.push({ subject: true });
    children.forEach((child, i) => {
      const lastChild = i === children.length - 1;
      if (child.step) walk(child.step, inner, lastChild, false);
      else if (child.subject) line(inner + (lastChild ? '└── ' : '├── '), [span('subject', subject)]);
      else caveatLines(child.caveat, inner, lastChild, line);
    });
  };
  walk(root, '', true, true);
}

function caveatLines(caveat, indent, last, line) {
  const connector = indent + (last ? '└── ' : '├── ');
  const inner = indent + (last ? '    ' : '│   ');
  const result = caveat.result;
  const mark = result === 'RESULT_TRUE' ? span('has', '✓') : result === 'RESULT_FALSE' ? span('no', '⨉') : span('cond', '?');
  const expression = (caveat.expression || '').split(/\s+/).join(' ');
  line(connector, [mark, ' ', span(result === 'RESULT_FALSE' ? 'faint' : '', expression), ' ', span('caveat', caveat.caveatName)]);
  const details = [];
  const context = caveat.context || {};
  if (Object.keys(context).length) details.push(JSON.stringify(context));
  else if (result !== 'RESULT_MISSING_SOME_CONTEXT') details.push('(no matching context found)');
  if (result === 'RESULT_MISSING_SOME_CONTEXT') {
    const missing = (caveat.partialCaveatInfo && caveat.partialCaveatInfo.missingRequiredContext) || [];
    details.push('missing context: ' + missing.join(', '));
  }
  details.forEach((d, i) => line(inner + (i === details.length - 1 ? '└── ' : '├── '), [d]));
}

// ---- the path drawing: objects as nodes, relations as labelled edges ----

const SVG = 'http://www.w3.org/2000/svg';

function svg(tag, attributes, text) {
  const element = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes || {})) element.setAttribute(name, value);
  if (text !== undefined) element.textContent = text;
  return element;
}

function state(result) {
  return result === HAS ? 'has' : result === NO ? 'no' : 'cond';
}

/**
 * The object graph of a trace: for a granted check, the steps that granted (every part of an
 * intersection or exclusion, the first granting part of anything else); for a denied one,
 * every step walked (at most `limit` objects).
 */
function pathGraph(info, limit = 40) {
  const model = schemaModel(info.schemaUsed);
  const root = info.check;
  const granted = root.result === HAS;
  const nodes = [];
  const edges = [];
  const node = (label, cls) => {
    const n = { id: nodes.length, label, members: [], cls, children: [] };
    nodes.push(n);
    return n;
  };
  const link = (from, to, label, cls) => {
    edges.push({ from, to, label, cls });
    from.children.push(to);
  };
  const arrowLabel = (step, child) => {
    const entry = model.get(`${step.resource.objectType}#${step.permission}`);
    const arrows = entry ? entry.arrows.filter((a) => a.computed === child.permission) : [];
    const sets = [...new Set(arrows.map((a) => a.tupleset))];
    return (sets.length ? sets.join('|') : '') + '→' + child.permission;
  };
  const visit = (step, at) => {
    if (at.members[at.members.length - 1] !== step.permission) at.members.push(step.permission);
    let steps = (step.subProblems && step.subProblems.traces) || [];
    const entry = model.get(`${step.resource.objectType}#${step.permission}`);
    const keepAll = !granted || (entry && ['intersection', 'all', 'exclusion'].includes(entry.op));
    if (!keepAll && step.result === HAS) {
      const first = steps.find((s) => s.result === HAS);
      steps = first ? [first] : [];
    }
    const source = sourceLabel(step);
    if (!steps.length && step.result !== NO && step.permissionType === 'PERMISSION_TYPE_RELATION') {
      const subject = node(subjectText(root.subject), 'subject');
      link(at, subject, step.permission + (source ? ' ' + source : ''), state(step.result) + (source ? ' shortcut' : ''));
      return;
    }
    if (!steps.length && source && step.result !== NO) {
      const subject = node(subjectText(root.subject), 'subject');
      link(at, subject, `${step.permission} ${source}`, state(step.result) + ' shortcut');
      return;
    }
    for (const child of steps) {
      if (nodes.length >= limit) return;
      if (objectText(child.resource) === objectText(step.resource)) {
        visit(child, at);
        continue;
      }
      const target = node(objectText(child.resource), state(child.result));
      const label = step.permissionType === 'PERMISSION_TYPE_RELATION' ? step.permission : arrowLabel(step, child);
      link(at, target, label, state(child.result));
      visit(child, target);
    }
  };
  const start = node(objectText(root.resource), state(root.result));
  visit(root, start);
  return { nodes, edges, root: start, granted };
}

function drawPath(info, container) {
  container.textContent = '';
  const graph = pathGraph(info);
  const { nodes, edges, root } = graph;
  // Layout: a tree drawn downwards, one row per depth, leaves in consecutive columns and a
  // parent above its first child, so a path reads from top to bottom.
  let nextColumn = 0;
  const place = (n, depth) => {
    n.depth = depth;
    if (!n.children.length) {
      n.column = nextColumn++;
      return;
    }
    n.children.forEach((c) => place(c, depth + 1));
    n.column = n.children[0].column;
  };
  place(root, 0);
  const charWidth = 7.8;
  for (const n of nodes) {
    n.text2 = n.members.join(' › ');
    n.width = Math.max(n.label.length, n.text2.length) * charWidth + 24;
    n.height = n.text2 ? 44 : 30;
  }
  const columns = nextColumn;
  const columnWidth = Array(columns).fill(0);
  for (const n of nodes) columnWidth[n.column] = Math.max(columnWidth[n.column], n.width);
  for (const e of edges) {
    const room = e.to.width / 2 + 10 + e.label.length * 7.2;
    columnWidth[e.to.column] = Math.max(columnWidth[e.to.column], room);
  }
  const x = [20];
  for (let c = 1; c < columns; c++) x[c] = x[c - 1] + columnWidth[c - 1] + 28;
  const rowHeight = 96;
  let depthMax = 0;
  for (const n of nodes) {
    n.x = x[n.column];
    n.y = 16 + n.depth * rowHeight;
    depthMax = Math.max(depthMax, n.depth);
  }
  const width = Math.max(...nodes.map((n) => n.x + Math.max(n.width, columnWidth[n.column]))) + 20;
  const height = 16 + depthMax * rowHeight + 44 + 16;
  const picture = svg('svg', {
    width, height, viewBox: `0 0 ${width} ${height}`, role: 'img',
    'aria-label': (graph.granted ? 'Path that granted access from ' : 'Steps walked from ') + root.label,
  });
  picture.append(svg('title', {}, graph.granted ? 'The path that granted access' : 'The steps that were walked'));
  const defs = svg('defs');
  const marker = svg('marker', { id: 'arrowhead', viewBox: '0 0 10 10', refX: '10', refY: '5', markerWidth: '7', markerHeight: '7', orient: 'auto-start-reverse' });
  marker.append(svg('path', { d: 'M 0 0 L 10 5 L 0 10 z', fill: '#5d6670' }));
  defs.append(marker);
  picture.append(defs);
  for (const e of edges) {
    const x1 = e.from.x + e.from.width / 2;
    const y1 = e.from.y + e.from.height;
    const x2 = e.to.x + e.to.width / 2;
    const y2 = e.to.y;
    const mid = (y1 + y2) / 2;
    const group = svg('g', { class: `edge ${e.cls}`, 'data-label': e.label, 'data-from': e.from.label, 'data-to': e.to.label });
    group.append(svg('path', { d: `M ${x1} ${y1} C ${x1} ${mid}, ${x2} ${mid}, ${x2} ${y2}`, 'marker-end': 'url(#arrowhead)' }));
    group.append(svg('text', { x: x2 + 10, y: mid + 4 }, e.label));
    picture.append(group);
  }
  for (const n of nodes) {
    const group = svg('g', { class: `node ${n.cls}`, 'data-object': n.label });
    group.append(svg('rect', { x: n.x, y: n.y, width: n.width, height: n.height, rx: 6 }));
    group.append(svg('text', { class: 'obj', x: n.x + 12, y: n.y + 19 }, n.label));
    if (n.text2) group.append(svg('text', { class: 'members', x: n.x + 12, y: n.y + 36 }, n.text2));
    picture.append(group);
  }
  container.append(picture);
}

// ---- panes ----

const panes = ['schema', 'relationships', 'check', 'lookup', 'validate', 'watch'];

function selectPane(name, focus) {
  for (const pane of panes) {
    const selected = pane === name;
    $('tab-' + pane).setAttribute('aria-selected', String(selected));
    $('tab-' + pane).tabIndex = selected ? 0 : -1;
    $('pane-' + pane).hidden = !selected;
  }
  if (focus) {
    const first = $('pane-' + name).querySelector('textarea, input, button');
    if (first) first.focus();
  }
}

// Schema.

function renderGutter(errorLines = new Set()) {
  const text = $('schema-text').value;
  const count = text.split('\n').length;
  const gutter = $('schema-gutter');
  gutter.textContent = '';
  for (let i = 1; i <= count; i++) {
    if (errorLines.has(i)) {
      const mark = span('bad', String(i));
      mark.dataset.line = String(i);
      gutter.append(mark, '\n');
    } else {
      gutter.append(String(i) + '\n');
    }
  }
  gutter.scrollTop = $('schema-text').scrollTop;
}

function focusSchemaAt(line, column) {
  const area = $('schema-text');
  const lines = area.value.split('\n');
  let offset = 0;
  for (let i = 0; i < line - 1 && i < lines.length; i++) offset += lines[i].length + 1;
  offset += Math.max(0, column - 1);
  area.focus();
  area.setSelectionRange(offset, offset + 1);
  const lineHeight = parseFloat(getComputedStyle(area).lineHeight) || 20;
  area.scrollTop = Math.max(0, (line - 4) * lineHeight);
}

function showSchemaErrors(message) {
  const list = $('schema-errors');
  list.textContent = '';
  const found = [...message.matchAll(/line (\d+), column (\d+): (.*?)(?=; line \d+, column \d+: |$)/g)];
  const lines = new Set(found.map((m) => Number(m[1])));
  renderGutter(lines);
  if (!found.length) {
    const item = document.createElement('li');
    item.append(span('error', message));
    list.append(item);
    return;
  }
  for (const m of found) {
    const item = document.createElement('li');
    const button = document.createElement('button');
    button.type = 'button';
    button.textContent = `line ${m[1]}, column ${m[2]}: ${m[3]}`;
    button.addEventListener('click', () => focusSchemaAt(Number(m[1]), Number(m[2])));
    item.append(button);
    list.append(item);
  }
}

async function loadSchema() {
  $('schema-errors').textContent = '';
  try {
    const answer = await call('/v1/schema/read', {});
    $('schema-text').value = answer.schemaText;
    setResult($('schema-result'), 'Schema read from the server.');
  } catch (error) {
    if (error.status !== 404) throw error;
    $('schema-text').value = '';
    setResult($('schema-result'), 'No schema has been written yet.');
  }
  renderGutter();
}

async function writeSchema() {
  $('schema-errors').textContent = '';
  renderGutter();
  setResult($('schema-result'), 'Writing…');
  try {
    const answer = await call('/v1/schema/write', { schema: $('schema-text').value });
    setResult($('schema-result'), `Schema written (revision token ${answer.writtenAt.token}).`, 'ok');
  } catch (error) {
    setResult($('schema-result'), 'The schema was not written.', 'bad');
    showSchemaErrors(error.message);
  }
}

// Relationships.

const relPages = { cursors: [], current: null };

function relFilter() {
  const filter = {};
  const value = (id) => $(id).value.trim();
  if (value('f-type')) filter.resourceType = value('f-type');
  if (value('f-id')) filter.optionalResourceId = value('f-id');
  if (value('f-relation')) filter.optionalRelation = value('f-relation');
  if (value('f-subject-type')) {
    filter.optionalSubjectFilter = { subjectType: value('f-subject-type') };
    if (value('f-subject-id')) filter.optionalSubjectFilter.optionalSubjectId = value('f-subject-id');
  }
  return filter;
}

async function readRelationships(cursor) {
  const limit = Number($('f-limit').value);
  const body = { optionalLimit: limit, optionalRelationshipFilter: relFilter() };
  if (cursor) body.optionalCursor = cursor;
  const rows = $('rel-rows');
  try {
    const batches = await stream('/v1/relationships/exportbulk', body);
    const relationships = batches.flatMap((b) => b.relationships || []);
    const last = batches.length ? batches[batches.length - 1].afterResultCursor : null;
    rows.textContent = '';
    for (const r of relationships) {
      const row = document.createElement('tr');
      const text = document.createElement('td');
      text.textContent = relationshipText(r);
      const actions = document.createElement('td');
      const remove = document.createElement('button');
      remove.type = 'button';
      remove.textContent = 'Delete';
      remove.setAttribute('aria-label', 'Delete ' + relationshipText(r));
      remove.addEventListener('click', () => deleteRelationship(r));
      actions.append(remove);
      row.append(text, actions);
      rows.append(row);
    }
    relPages.current = cursor || null;
    relPages.next = relationships.length === limit ? last : null;
    $('rel-caption').textContent = relationships.length
      ? `${relationships.length} relationship${relationships.length === 1 ? '' : 's'} on this page`
      : 'No relationships match.';
    $('rel-next').disabled = !relPages.next;
    $('rel-first').disabled = !cursor;
  } catch (error) {
    rows.textContent = '';
    $('rel-caption').textContent = 'Error: ' + error.message;
  }
}

async function addRelationships() {
  const lines = $('rel-add').value.split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('//'));
  const result = $('rel-add-result');
  if (!lines.length) {
    setResult(result, 'Nothing to add.', 'bad');
    return;
  }
  let updates;
  try {
    updates = lines.map((line, i) => {
      try {
        return { operation: 'OPERATION_TOUCH', relationship: parseRelationship(line) };
      } catch (error) {
        throw new Error(`line ${i + 1}: ${error.message}`);
      }
    });
  } catch (error) {
    setResult(result, error.message, 'bad');
    return;
  }
  try {
    await call('/v1/relationships/write', { updates });
    setResult(result, `Wrote ${updates.length} relationship${updates.length === 1 ? '' : 's'}.`, 'ok');
    $('rel-add').value = '';
    await readRelationships(null);
  } catch (error) {
    setResult(result, error.message, 'bad');
  }
}

async function deleteRelationship(relationship) {
  try {
    await call('/v1/relationships/write', { updates: [{ operation: 'OPERATION_DELETE', relationship }] });
    setResult($('rel-add-result'), 'Deleted ' + relationshipText(relationship) + '.', 'ok');
    await readRelationships(relPages.current);
  } catch (error) {
    setResult($('rel-add-result'), error.message, 'bad');
  }
}

// Check.

function parseCheck(text) {
  const match = /^([^#@\s]+)#([^@\s]+)@(\S+)$/.exec(text.trim());
  if (!match) throw new Error('write the check as resource#permission@subject, e.g. doc:readme#view@user:ann');
  return { resource: parseObject(match[1], 'the resource'), permission: match[2], subject: parseSubject(match[3], 'the subject') };
}

async function runCheck() {
  const answer = $('check-answer');
  const tree = $('check-tree');
  const path = $('check-path');
  tree.textContent = '';
  path.textContent = '';
  let request;
  try {
    request = parseCheck($('check-text').value);
    const context = $('check-context').value.trim();
    if (context) request.context = JSON.parse(context);
  } catch (error) {
    answer.textContent = error.message;
    answer.className = 'answer no';
    return;
  }
  request.consistency = { fullyConsistent: true };
  request.withTracing = true;
  answer.textContent = 'Checking…';
  answer.className = 'answer';
  try {
    const result = await call('/v1/permissions/check', request);
    if (result.permissionship === HAS) {
      answer.textContent = '✓ has permission';
      answer.className = 'answer has';
    } else if (result.permissionship === CONDITIONAL) {
      const missing = (result.partialCaveatInfo && result.partialCaveatInfo.missingRequiredContext) || [];
      answer.textContent = '? conditional: missing context ' + missing.join(', ');
      answer.className = 'answer cond';
    } else {
      answer.textContent = '⨉ no permission';
      answer.className = 'answer no';
    }
    if (result.debugTrace && result.debugTrace.check) {
      renderTree(result.debugTrace, tree);
      $('check-path-title').textContent = result.permissionship === HAS ? 'Path that granted access' : 'Steps walked (none granted)';
      drawPath(result.debugTrace, path);
    }
  } catch (error) {
    answer.textContent = error.message;
    answer.className = 'answer no';
  }
}

// Lookups.

const lookups = {
  lr: { cursor: null, request: null },
  ls: { cursor: null, request: null },
};

async function lookupResources(more) {
  const lookup = lookups.lr;
  const list = $('lr-results');
  try {
    if (!more) {
      lookup.request = {
        consistency: { fullyConsistent: true },
        resourceObjectType: $('lr-type').value.trim(),
        permission: $('lr-permission').value.trim(),
        subject: parseSubject($('lr-subject').value, 'the subject'),
        optionalLimit: Number($('lr-limit').value) || 10,
      };
      lookup.cursor = null;
      list.textContent = '';
    }
    const body = { ...lookup.request };
    if (lookup.cursor) {
      body.optionalCursor = lookup.cursor;
      delete body.consistency;
    }
    const found = await stream('/v1/permissions/resources', body);
    for (const r of found) {
      const item = document.createElement('li');
      item.textContent = `${lookup.request.resourceObjectType}:${r.resourceObjectId}` +
        (r.permissionship === 'LOOKUP_PERMISSIONSHIP_CONDITIONAL_PERMISSION' ? ' (conditional)' : '');
      list.append(item);
    }
    lookup.cursor = found.length ? found[found.length - 1].afterResultCursor : null;
    $('lr-more').hidden = found.length < lookup.request.optionalLimit;
    setResult($('lr-status'), `${list.children.length} found${$('lr-more').hidden ? '' : ', more to load'}.`);
  } catch (error) {
    setResult($('lr-status'), error.message, 'bad');
  }
}

async function lookupSubjects(more) {
  const lookup = lookups.ls;
  const list = $('ls-results');
  try {
    if (!more) {
      lookup.request = {
        consistency: { fullyConsistent: true },
        resource: parseObject($('ls-resource').value, 'the resource'),
        permission: $('ls-permission').value.trim(),
        subjectObjectType: $('ls-type').value.trim(),
        optionalConcreteLimit: Number($('ls-limit').value) || 10,
      };
      lookup.cursor = null;
      list.textContent = '';
    }
    const body = { ...lookup.request };
    if (lookup.cursor) {
      body.optionalCursor = lookup.cursor;
      delete body.consistency;
    }
    const found = await stream('/v1/permissions/subjects', body);
    for (const r of found) {
      const item = document.createElement('li');
      const excluded = r.subject.excludedSubjectIds || [];
      item.textContent = `${lookup.request.subjectObjectType}:${r.subject.subjectObjectId}` +
        (excluded.length ? ` (except ${excluded.join(', ')})` : '') +
        (r.subject.permissionship === 'LOOKUP_PERMISSIONSHIP_CONDITIONAL_PERMISSION' ? ' (conditional)' : '');
      list.append(item);
    }
    lookup.cursor = found.length ? found[found.length - 1].afterResultCursor : null;
    const concrete = found.filter((r) => r.subject.subjectObjectId !== '*').length;
    $('ls-more').hidden = concrete < lookup.request.optionalConcreteLimit;
    setResult($('ls-status'), `${list.children.length} found${$('ls-more').hidden ? '' : ', more to load'}.`);
  } catch (error) {
    setResult($('ls-status'), error.message, 'bad');
  }
}

// Validation files.

async function runValidation() {
  const summary = $('validate-summary');
  const list = $('validate-results');
  list.textContent = '';
  setResult(summary, 'Running on a scratch store…');
  try {
    const answer = await call('/ui/api/validate', {
      yaml: $('validate-text').value,
      consistency: $('validate-consistency').checked,
    });
    const failed = answer.results.filter((r) => !r.passed).length;
    for (const r of answer.results) {
      const item = document.createElement('li');
      item.className = r.passed ? 'pass' : 'fail';
      item.append(span('tag', r.passed ? 'PASS' : 'FAIL'), span('kind', r.kind + ': '), r.item);
      if (r.failure) item.append(span('detail', r.failure));
      list.append(item);
    }
    const listed = new Set(answer.results.map((r) => r.failure).filter(Boolean));
    for (const failure of answer.failures.filter((f) => !listed.has(f))) {
      const item = document.createElement('li');
      item.className = 'fail';
      item.append(span('tag', 'FAIL'), failure);
      list.append(item);
    }
    const extra = answer.failures.length - failed;
    setResult(summary,
      `${answer.passed ? 'Passed' : 'Failed'}: ${answer.results.length - failed} of ${answer.results.length} passed` +
      (extra > 0 ? `, ${extra} consistency failure${extra === 1 ? '' : 's'}` : '') +
      ` (${plural(answer.relationships, 'relationship')}, ${plural(answer.consistencyChecks, 'consistency check')}).`,
      answer.passed ? 'ok' : 'bad');
  } catch (error) {
    setResult(summary, error.message, 'bad');
  }
}

// Watch: a live feed of changes.

const watch = { abort: null, paused: false };

function stopWatch() {
  if (watch.abort) watch.abort.abort();
  watch.abort = null;
}

async function startWatch() {
  stopWatch();
  if (!storedKey() || watch.paused) return;
  const controller = new AbortController();
  watch.abort = controller;
  $('watch-status').textContent = 'Following changes…';
  try {
    const response = await fetch('/v1/watch', {
      method: 'POST',
      headers: { Authorization: 'Bearer ' + storedKey(), 'Content-Type': 'application/json' },
      body: '{}',
      signal: controller.signal,
    });
    if (!response.ok) throw new Error(`watch refused (${response.status})`);
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let newline;
      while ((newline = buffer.indexOf('\n')) >= 0) {
        const line = buffer.slice(0, newline);
        buffer = buffer.slice(newline + 1);
        if (line.trim()) showChange(JSON.parse(line));
      }
    }
    $('watch-status').textContent = 'The server ended the feed.';
  } catch (error) {
    if (error.name === 'AbortError') return;
    $('watch-status').textContent = 'Feed stopped: ' + error.message;
  }
}

function showChange(message) {
  if (message.error) {
    $('watch-status').textContent = 'Feed error: ' + message.error.message;
    return;
  }
  const result = message.result || {};
  if (result.isCheckpoint) {
    $('watch-status').textContent = 'Following changes (up to date ' + new Date().toLocaleTimeString() + ').';
    return;
  }
  const list = $('watch-list');
  // Newest revision first; a revision's own updates in the order it made them.
  const revision = document.createDocumentFragment();
  for (const update of result.updates || []) {
    const item = document.createElement('li');
    const op = (update.operation || '').replace('OPERATION_', '');
    item.append(span('op op-' + op, op), relationshipText(update.relationship));
    revision.append(item);
  }
  list.prepend(revision);
  while (list.children.length > 200) list.lastChild.remove();
}

// ---- signing in and out ----

function clearData() {
  for (const id of ['schema-text', 'rel-add', 'check-text', 'check-context', 'validate-text']) $(id).value = '';
  for (const id of ['schema-errors', 'rel-rows', 'check-tree', 'check-path', 'lr-results', 'ls-results', 'validate-results', 'watch-list']) $(id).textContent = '';
  for (const id of ['schema-result', 'rel-add-result', 'check-answer', 'lr-status', 'ls-status', 'validate-summary', 'watch-status']) $(id).textContent = '';
  renderGutter();
}

function signOut(message) {
  sessionStorage.removeItem(KEY);
  stopWatch();
  clearData();
  $('app').hidden = true;
  $('signout').hidden = true;
  $('signin').hidden = false;
  $('signin-error').textContent = message || '';
  status('');
  $('key').focus();
}

async function enter() {
  $('signin').hidden = true;
  $('app').hidden = false;
  $('signout').hidden = false;
  status('Signed in to ' + location.host);
  selectPane('schema', true);
  startWatch();
  await loadSchema();
  await readRelationships(null);
}

async function signIn(key) {
  try {
    await post('/v1/schema/read', {}, key);
  } catch (error) {
    if (error.status === 401) {
      $('signin-error').textContent = 'The server refused this key.';
      return;
    }
    if (error.status !== 404) {
      $('signin-error').textContent = error.message;
      return;
    }
  }
  sessionStorage.setItem(KEY, key);
  $('key').value = '';
  $('signin-error').textContent = '';
  await enter();
}

// ---- wiring ----

function onSubmit(id, action) {
  $(id).addEventListener('submit', (event) => {
    event.preventDefault();
    action();
  });
}

function setup() {
  onSubmit('signin-form', () => signIn($('key').value.trim()));
  $('signout').addEventListener('click', () => signOut('Signed out.'));
  for (const pane of panes) $('tab-' + pane).addEventListener('click', () => selectPane(pane, false));
  $('pane-schema').parentElement.querySelector('.tabs').addEventListener('keydown', (event) => {
    const index = panes.findIndex((p) => $('tab-' + p) === document.activeElement);
    if (index < 0) return;
    const step = event.key === 'ArrowRight' ? 1 : event.key === 'ArrowLeft' ? -1 : 0;
    if (!step) return;
    event.preventDefault();
    const next = panes[(index + step + panes.length) % panes.length];
    selectPane(next, false);
    $('tab-' + next).focus();
  });
  document.addEventListener('keydown', (event) => {
    if (event.altKey && !event.ctrlKey && /^[1-6]$/.test(event.key) && !$('app').hidden) {
      event.preventDefault();
      selectPane(panes[Number(event.key) - 1], true);
    }
    if (event.ctrlKey && event.key === 'Enter' && event.target instanceof HTMLTextAreaElement) {
      const form = event.target.closest('form');
      if (form) {
        event.preventDefault();
        form.requestSubmit();
      }
    }
  });
  onSubmit('schema-form', writeSchema);
  $('schema-reload').addEventListener('click', loadSchema);
  $('schema-text').addEventListener('input', () => renderGutter());
  $('schema-text').addEventListener('scroll', () => {
    $('schema-gutter').scrollTop = $('schema-text').scrollTop;
  });
  onSubmit('rel-add-form', addRelationships);
  onSubmit('rel-filter-form', () => readRelationships(null));
  $('rel-first').addEventListener('click', () => readRelationships(null));
  $('rel-next').addEventListener('click', () => readRelationships(relPages.next));
  onSubmit('check-form', runCheck);
  onSubmit('lr-form', () => lookupResources(false));
  $('lr-more').addEventListener('click', () => lookupResources(true));
  onSubmit('ls-form', () => lookupSubjects(false));
  $('ls-more').addEventListener('click', () => lookupSubjects(true));
  onSubmit('validate-form', runValidation);
  $('watch-toggle').addEventListener('click', () => {
    watch.paused = !watch.paused;
    $('watch-toggle').textContent = watch.paused ? 'Resume' : 'Pause';
    if (watch.paused) {
      stopWatch();
      $('watch-status').textContent = 'Paused.';
    } else {
      startWatch();
    }
  });
  $('watch-clear').addEventListener('click', () => {
    $('watch-list').textContent = '';
  });
  renderGutter();
  const key = storedKey();
  if (key) {
    signIn(key);
  } else {
    $('key').focus();
  }
}

document.addEventListener('DOMContentLoaded', setup);
