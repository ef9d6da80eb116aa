/* fieldtruth's decisions on the device (not vendored; same licence as fieldtruth).
 * A reviewer records per lead: decision, method, reviewer id, note, visit time, optionally the device's
 * position (only when a button is pressed) and photo fingerprints (SHA-256 computed here; photos never
 * leave the device or enter the page's storage). Decisions are kept in localStorage under a key of this
 * map only (encrypted with a key from the sealed payload when the map is sealed), shown on the map at
 * once, can be changed or removed, and are exported as one decisions file signed with the map's key
 * (HMAC-SHA256 over the exact bytes; see fieldtruth/review/mapdecisions.py). Where the browser gives the
 * page no storage, the page says so and offers the export after every decision. */
(function () {
  'use strict';
  var C = null, H = null, NS = '', store = null, aesKey = null, hmacKey = null;
  var state = {records: [], reviewer: '', exportedAt: null, exportedCount: 0, dirty: false};
  var form = null, list = null, button = null, editing = null;

  function el(tag, cls, text) { return H.el(tag, cls, text); }
  function hex(buf) {
    return Array.prototype.map.call(new Uint8Array(buf), function (b) { return ('0' + b.toString(16)).slice(-2); }).join('');
  }
  function fromB64(s) { var bin = atob(s), a = new Uint8Array(bin.length); for (var i = 0; i < bin.length; i++) { a[i] = bin.charCodeAt(i); } return a; }
  function toB64(a) { var s = ''; new Uint8Array(a).forEach(function (b) { s += String.fromCharCode(b); }); return btoa(s); }
  function randomHex(n) { var a = new Uint8Array(n); crypto.getRandomValues(a); return hex(a); }
  function words(s) { return String(s).replace('_', ' '); }
  function button_(text, cls, onclick) {
    var b = el('button', 'ft-btn' + (cls ? ' ' + cls : ''), text); b.type = 'button';
    b.addEventListener('click', onclick); return b;
  }
  function localInput(d) {  // a Date as the value of <input type="datetime-local">, in local time
    var p = function (n) { return ('0' + n).slice(-2); };
    return d.getFullYear() + '-' + p(d.getMonth() + 1) + '-' + p(d.getDate()) + 'T' + p(d.getHours()) + ':' + p(d.getMinutes());
  }
  function shown(iso) { var d = new Date(iso); return isNaN(d) ? iso : d.toLocaleString(); }
  /* The ledger's canonical reviewer id (fieldtruth/review/rules.py reviewer_key): Python's strip(), NFKC,
   * casefold, NFKC, strip(). Python's casefold differs from toLowerCase, for what can end up ASCII, only
   * in folding sharp s to "ss"; a browser test compares the two on every Unicode character. */
  var PY_STRIP = /^[\t\n\v\f\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+|[\t\n\v\f\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+$/g;
  function strip(s) { return s.replace(PY_STRIP, ''); }
  function reviewerKey(s) {
    return strip(strip(String(s)).normalize('NFKC').toLowerCase().replace(/\u00df/g, 'ss').normalize('NFKC'));
  }
  function validReviewer(key) { return new RegExp('^(?:' + C.reviewer + ')$').test(key); }

  /* ---- storage: one item per map, sealed maps encrypted with the payload's store key ---- */
  function probe() {
    try { var s = window.localStorage, k = NS + ':probe'; s.setItem(k, '1'); s.removeItem(k); return s; } catch (e) { return null; }
  }
  function load() {
    var raw = store ? store.getItem(NS) : null;
    if (!raw) { return Promise.resolve(); }
    var item = JSON.parse(raw);
    var plain = !item.ct ? Promise.resolve(JSON.stringify(item.state)) :
      crypto.subtle.decrypt({name: 'AES-GCM', iv: fromB64(item.iv), additionalData: new TextEncoder().encode(NS)},
        aesKey, fromB64(item.ct)).then(function (b) { return new TextDecoder().decode(b); });
    return plain.then(function (text) { var s = JSON.parse(text); if (s && s.records) { state = s; } });
  }
  function persist() {
    if (!store) { return Promise.resolve(false); }
    var text = JSON.stringify(state);
    var item = !aesKey ? Promise.resolve({v: 1, state: state}) : (function () {
      var iv = crypto.getRandomValues(new Uint8Array(12));
      return crypto.subtle.encrypt({name: 'AES-GCM', iv: iv, additionalData: new TextEncoder().encode(NS)}, aesKey,
        new TextEncoder().encode(text)).then(function (ct) { return {v: 1, iv: toB64(iv), ct: toB64(ct)}; });
    })();
    return item.then(function (it) { store.setItem(NS, JSON.stringify(it)); return true; });
  }

  /* ---- records ---- */
  function recordsFor(site) { return state.records.filter(function (r) { return r.site_id === site; }); }
  function localFor(site) {
    var rs = recordsFor(site); if (!rs.length) { return null; }
    return rs.reduce(function (a, b) { return a.recorded_at >= b.recorded_at ? a : b; });
  }
  function save(rec) {
    var sites = [rec.site_id];
    state.records = state.records.filter(function (r) {
      var same = r.id === rec.id || (r.site_id === rec.site_id && r.reviewer === rec.reviewer);
      if (same && sites.indexOf(r.site_id) < 0) { sites.push(r.site_id); }
      return !same;
    });
    state.records.push(rec); state.reviewer = rec.reviewer; state.dirty = true;
    return persist().then(function () { sites.forEach(H.changed); refresh(); });
  }
  function remove(id) {
    var gone = state.records.filter(function (r) { return r.id === id; });
    state.records = state.records.filter(function (r) { return r.id !== id; }); state.dirty = true;
    return persist().then(function () { gone.forEach(function (r) { H.changed(r.site_id); }); refresh(); });
  }

  /* ---- the export: JSON.stringify(doc, null, 1), then the code over those exact bytes as the last member ---- */
  function exportFile() {
    var doc = {format: C.format, version: C.version, statement: C.statement, run: C.run, run_id: C.runId,
      map_id: C.mapId, map_made: C.made, sealed: !!C.sealed, exported_at: new Date().toISOString(),
      decisions: state.records.map(function (r) {
        return {id: r.id, site_id: r.site_id, basis: r.basis, decision: r.decision, method: r.method,
          reviewer: r.reviewer, note: r.note, visited_at: r.visited_at, recorded_at: r.recorded_at,
          position: r.position || null, photos: r.photos || []};
      })};
    var body = JSON.stringify(doc, null, 1);
    return crypto.subtle.sign('HMAC', hmacKey, new TextEncoder().encode(body)).then(function (mac) {
      var text = body.slice(0, -2) + ',\n "mac": "' + hex(mac) + '"\n}\n';
      var stamp = doc.exported_at.replace(/[-:]/g, '').slice(0, 13);
      var name = 'decisions-' + String(C.run).replace(/[^A-Za-z0-9._-]+/g, '_') + '-' + C.mapId.slice(0, 8) + '-' + stamp + '.json';
      var a = el('a'); a.href = URL.createObjectURL(new Blob([text], {type: 'application/json'})); a.download = name;
      document.body.appendChild(a); a.click(); a.remove();
      setTimeout(function () { URL.revokeObjectURL(a.href); }, 60000);
      state.exportedAt = doc.exported_at; state.exportedCount = doc.decisions.length; state.dirty = false;
      return persist().then(function () { refresh(); H.toast('Exported ' + doc.decisions.length + ' decision(s) as ' + name); });
    });
  }
  function clearAll() {
    var sites = state.records.map(function (r) { return r.site_id; });
    state = {records: [], reviewer: state.reviewer, exportedAt: null, exportedCount: 0, dirty: false};
    if (store) { store.removeItem(NS); }
    sites.forEach(H.changed); refresh(); H.toast('Decisions removed from this device.');
  }

  /* ---- the form ---- */
  function choices(name, values, labels) {
    var box = el('div', 'ft-choices');
    values.forEach(function (v) {
      var l = el('label'), i = el('input'); i.type = 'radio'; i.name = name; i.value = v; i.required = true;
      l.appendChild(i); l.appendChild(document.createTextNode(labels[v] || words(v))); box.appendChild(l);
    });
    return box;
  }
  function fieldset(title, child, hint) {
    var f = el('fieldset'); f.appendChild(el('legend', null, title)); f.appendChild(child);
    if (hint) { f.appendChild(el('p', 'ft-hint', hint)); }
    return f;
  }
  function buildForm() {
    form = el('form', 'ft-sheet'); form.id = 'ft-decide'; form.hidden = true; form.noValidate = true;
    form.setAttribute('aria-label', 'Record a decision');
    form.appendChild(el('h3'));
    form.appendChild(fieldset('Decision', choices('decision', C.decisions, {field_visit: 'field visit needed'})));
    form.appendChild(fieldset('How did you decide?', choices('method', C.methods, {imagery: 'imagery', field: 'field visit', other: 'other'})));
    var who = el('input'); who.type = 'text'; who.name = 'reviewer'; who.autocomplete = 'off'; who.spellcheck = false;
    form.appendChild(fieldset('Your reviewer id', who,
      'A code name such as rv07: 2-32 letters, digits, . _ - (never your name). Case does not matter: RV07 is rv07.'));
    var when = el('input'); when.type = 'datetime-local'; when.name = 'visited';
    form.appendChild(fieldset('When did you see it?', when, 'Your local time; now unless you change it.'));
    var note = el('textarea'); note.name = 'note'; note.maxLength = C.maxNote;
    form.appendChild(fieldset('Short note', note, 'What you saw. No names, phone numbers or descriptions of people.'));
    var pos = el('div', 'ft-row'); pos.id = 'ft-pos';
    form.appendChild(fieldset('Your position (optional)', pos, 'Only if you press the button; it stays in this decision.'));
    var photos = el('div'); photos.id = 'ft-photos';
    form.appendChild(fieldset('Photo fingerprints (optional)', photos,
      'Pick photos: only their SHA-256 fingerprints are kept; the photos stay on this device.'));
    form.appendChild(el('p', 'ft-problem')).setAttribute('role', 'alert');
    var row = el('div', 'ft-row ft-save');
    var ok = el('button', 'ft-btn primary', 'Save on this device'); ok.type = 'submit';
    row.appendChild(ok);
    row.appendChild(button_('Cancel', '', function () { form.hidden = true; }));
    var del = button_('Remove this decision', 'danger', function () { if (editing.id) { remove(editing.id); } form.hidden = true; });
    del.className += ' ft-del'; row.appendChild(del);
    form.appendChild(row);
    ok.addEventListener('click', function (ev) { ev.preventDefault(); submit(); });  // see FTSubmit in fieldtruth-map.js
    document.body.appendChild(form);
  }
  function drawPosition() {
    var box = document.getElementById('ft-pos'); box.textContent = '';
    if (editing.position) {
      var p = editing.position;
      box.appendChild(el('span', 'ft-pos-text', p.lat.toFixed(6) + ', ' + p.lon.toFixed(6) +
        (p.accuracy_m !== null ? ' (\u00b1 ' + Math.round(p.accuracy_m) + ' m)' : '')));
      box.appendChild(button_('Remove position', '', function () { editing.position = null; drawPosition(); }));
      return;
    }
    box.appendChild(button_('Add my position', '', function () {
      if (!navigator.geolocation) { problem('This browser cannot tell the position.'); return; }
      box.appendChild(el('span', null, ' asking the device...'));
      navigator.geolocation.getCurrentPosition(function (g) {
        editing.position = {lat: Math.round(g.coords.latitude * 1e6) / 1e6, lon: Math.round(g.coords.longitude * 1e6) / 1e6,
          accuracy_m: g.coords.accuracy === null || g.coords.accuracy === undefined ? null : Math.round(g.coords.accuracy * 10) / 10};
        drawPosition();
      }, function (e) { problem('No position: ' + e.message); drawPosition(); }, {enableHighAccuracy: true, timeout: 30000, maximumAge: 0});
    }));
  }
  function drawPhotos() {
    var box = document.getElementById('ft-photos'); box.textContent = '';
    var ul = el('ul');
    editing.photos.forEach(function (h, i) {
      var li = el('li'); li.appendChild(el('span', 'ft-hash', h.slice(0, 16) + '\u2026 '));
      li.appendChild(button_('remove', '', function () { editing.photos.splice(i, 1); drawPhotos(); })); ul.appendChild(li);
    });
    box.appendChild(ul);
    var pick = el('input'); pick.type = 'file'; pick.accept = 'image/*'; pick.multiple = true; pick.id = 'ft-photo-pick';
    pick.addEventListener('change', function () {
      var files = Array.prototype.slice.call(pick.files || []);
      Promise.all(files.map(function (f) {
        return f.arrayBuffer().then(function (b) { return crypto.subtle.digest('SHA-256', b); }).then(hex);
      })).then(function (hs) {
        hs.forEach(function (h) { if (editing.photos.indexOf(h) < 0) { editing.photos.push(h); } }); drawPhotos();
      }, function (e) { problem('Could not read the photo: ' + e.message); });
    });
    box.appendChild(pick);
  }
  function problem(text) { form.querySelector('.ft-problem').textContent = text || ''; }
  function openForm(site, rec) {
    var reviewer = rec ? rec.reviewer : state.reviewer;
    var mine = !rec && reviewer ? recordsFor(site).filter(function (r) { return r.reviewer === reviewer; })[0] : null;
    rec = rec || mine;
    editing = rec ? JSON.parse(JSON.stringify(rec)) : {id: null, site_id: site, position: null, photos: []};
    form.querySelector('h3').textContent = (rec ? 'Change your decision on ' : 'Your decision on ') + site;
    ['decision', 'method'].forEach(function (n) {
      Array.prototype.forEach.call(form.elements[n], function (i) { i.checked = !!rec && rec[n] === i.value; });
    });
    form.elements.reviewer.value = reviewer || '';
    form.elements.visited.value = localInput(rec ? new Date(rec.visited_at) : new Date());
    form.elements.note.value = rec ? rec.note : '';
    form.querySelector('.ft-del').hidden = !rec;
    problem(''); drawPosition(); drawPhotos();
    form.hidden = false; form.scrollTop = 0;
  }
  function submit() {
    var f = form.elements, decision = f.decision.value, method = f.method.value, reviewer = reviewerKey(f.reviewer.value);
    var visited = new Date(f.visited.value);
    if (C.decisions.indexOf(decision) < 0) { return problem('Choose a decision.'); }
    if (C.methods.indexOf(method) < 0) { return problem('Choose how you decided.'); }
    if (!validReviewer(reviewer)) {
      return problem('The reviewer id must be a code name of 2-32 letters, digits, . _ - (no spaces, no e-mail, ' +
        'no look-alike letters of other scripts).');
    }
    if (!f.visited.value || isNaN(visited)) { return problem('Give the time you saw the site.'); }
    if (visited.getTime() > Date.now() + 10 * 60 * 1000) { return problem('The visit time is in the future.'); }
    var rec = {id: editing.id || randomHex(16), site_id: editing.site_id, basis: H.basis(editing.site_id), decision: decision,
      method: method, reviewer: reviewer, note: f.note.value.trim().slice(0, C.maxNote), visited_at: visited.toISOString(),
      recorded_at: new Date().toISOString(), position: editing.position, photos: editing.photos.slice()};
    save(rec).then(function () {
      form.hidden = true; H.saved();
      if (!store) { openList(); H.toast('Saved for now. This browser keeps nothing: export the decisions file now.', 8000); }
      else { H.toast('Saved on this device: ' + rec.site_id + ' ' + words(rec.decision) + ' by ' + rec.reviewer + '. Export when you are done.'); }
    }, function (e) { problem('Could not save: ' + e.message); });
  }

  /* ---- the list of decisions on this device ---- */
  function buildList() {
    list = el('section', 'ft-sheet'); list.id = 'ft-dlist'; list.hidden = true;
    list.setAttribute('aria-label', 'Decisions on this device');
    document.body.appendChild(list);
    button = el('button', 'ft-btn primary ft-dbutton'); button.type = 'button'; button.id = 'ft-dbutton';
    button.addEventListener('click', function () { if (list.hidden) { openList(); } else { list.hidden = true; } });
    document.body.appendChild(button);
  }
  function openList() { form.hidden = true; list.hidden = false; refresh(); }
  function refresh() {
    button.textContent = 'Decisions (' + state.records.length + ')';
    if (list.hidden) { return; }
    list.textContent = '';
    list.appendChild(el('h3', null, 'Decisions on this device (' + state.records.length + ')'));
    if (!store) {
      list.appendChild(el('div', 'ft-nostore', 'This browser gives this page no storage: decisions are kept only ' +
        'while the page stays open. Export the decisions file after each decision.'));
    }
    var ul = el('ul');
    state.records.slice().sort(function (a, b) { return a.site_id < b.site_id ? -1 : 1; }).forEach(function (r) {
      var li = el('li');
      li.appendChild(el('b', null, r.site_id + ': ' + words(r.decision)));
      li.appendChild(document.createTextNode(' (' + r.method + ') by ' + r.reviewer + ', seen ' + shown(r.visited_at) +
        (r.position ? ', position kept' : '') + (r.photos.length ? ', ' + r.photos.length + ' photo(s)' : '') + ' '));
      li.appendChild(button_('Show', '', function () { list.hidden = true; H.open(r.site_id); }));
      li.appendChild(button_('Change', '', function () { list.hidden = true; openForm(r.site_id, r); }));
      var rm = button_('Remove', 'danger', function () {  // a second tap removes: no loss by a slip
        if (rm.dataset.armed) { remove(r.id); return; }
        rm.dataset.armed = '1'; rm.textContent = 'Tap again to remove';
        setTimeout(function () { delete rm.dataset.armed; rm.textContent = 'Remove'; }, 4000);
      });
      li.appendChild(rm);
      ul.appendChild(li);
    });
    list.appendChild(ul);
    list.appendChild(el('p', 'ft-hint', state.exportedAt ? 'Last exported ' + shown(state.exportedAt) + ' (' +
      state.exportedCount + ' decisions)' + (state.dirty ? '; changed since.' : '.') : 'Not exported yet.'));
    var row = el('div', 'ft-row');
    var exp = button_('Export decisions file', 'primary', function () { exportFile(); });
    exp.id = 'ft-export'; exp.disabled = !state.records.length; row.appendChild(exp);
    var clear = button_('Clear this device', 'danger', function () {
      clear.hidden = true;
      var sure = el('div', 'ft-row');
      sure.appendChild(el('span', 'ft-problem', state.dirty || !state.exportedAt ? 'NOT exported: these decisions will be lost. '
        : 'Remove ' + state.records.length + ' exported decision(s) from this browser? '));
      sure.appendChild(button_('Yes, clear', 'danger', clearAll));
      sure.appendChild(button_('Keep them', '', function () { refresh(); }));
      list.appendChild(sure);
    });
    clear.id = 'ft-clear'; clear.disabled = !state.records.length; row.appendChild(clear);
    row.appendChild(button_('Close', '', function () { list.hidden = true; }));
    list.appendChild(row);
    list.appendChild(el('p', 'ft-hint', 'Give the file to your analyst: fieldtruth review import ' + C.run + ' FILE. ' +
      'It holds site ids and your decisions, never site coordinates.'));
  }

  window.FTDecide = {
    init: function (P, hooks) {
      C = P.decide; H = hooks; NS = 'fieldtruth:decisions:' + C.mapId; store = probe();
      buildForm(); buildList(); refresh();
      var keys = [crypto.subtle.importKey('raw', fromB64(C.key), {name: 'HMAC', hash: 'SHA-256'}, false, ['sign'])
        .then(function (k) { hmacKey = k; })];
      if (C.storeKey) {
        keys.push(crypto.subtle.importKey('raw', fromB64(C.storeKey), 'AES-GCM', false, ['encrypt', 'decrypt'])
          .then(function (k) { aesKey = k; }));
      }
      return Promise.all(keys).then(load).then(function () {
        state.records.forEach(function (r) { H.changed(r.site_id); }); refresh();
        document.body.setAttribute('data-ft-decide', store ? 'stored' : 'nostore');
      }, function (e) { H.toast('Could not read the decisions kept in this browser: ' + e.message, 8000); });
    },
    popupPart: function (box, site) {
      recordsFor(site).forEach(function (r) {
        var d = el('div', 'ft-local-note', 'On this device: ' + words(r.decision) + ' by ' + r.reviewer + ' (' + r.method +
          '), seen ' + shown(r.visited_at) + '. Not imported yet. ');
        d.appendChild(button_('Change', '', function () { openForm(site, r); })); box.appendChild(d);
      });
      var row = el('div', 'ft-actions');
      var b = button_('Record a decision', 'primary', function () { openForm(site, null); }); b.classList.add('ft-decide-btn');
      row.appendChild(b); box.appendChild(row);
    },
    localFor: function (site) { return C ? localFor(site) : null; },
    reviewerKey: function (s) { var k = reviewerKey(s); return C && validReviewer(k) ? k : null; },
    count: function () { return state.records.length; }
  };
})();
