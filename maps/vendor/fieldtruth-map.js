/* fieldtruth's own page script (not vendored; same licence as fieldtruth).
 * Reads window.FT_DATA = {sealed: {...}} (AES-GCM, PBKDF2-HMAC-SHA256 key) or {payload: {...}},
 * decrypts with WebCrypto after the passphrase is typed, then draws the map. Every data string is put on
 * screen with textContent (or esc() where Leaflet wants HTML), never parsed as markup. */
(function () {
  'use strict';
  var D = window.FT_DATA || {};
  var STATUS = {unverified: '#ff8c00', confirmed: '#d7191c', field_visit: '#2c7bb6', uncertain: '#8e44ad',
    rejected: '#8c8c8c'};
  var RISK = {low: '#fee8c8', medium: '#fdbb84', high: '#e34a33', 'not covered': '#6b6b6b'};
  var CLUSTER_MIN = 300;

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) { e.className = cls; }
    if (text !== undefined && text !== null) { e.textContent = String(text); }
    return e;
  }
  function esc(s) {
    return String(s).replace(/[&<>"'`]/g, function (c) { return '&#' + c.charCodeAt(0) + ';'; });
  }
  function table(rows) {
    var t = el('table', 'ft-popup');
    rows.forEach(function (r) {
      if (r[1] === null || r[1] === undefined) { return; }
      var tr = el('tr'); tr.appendChild(el('th', null, r[0])); tr.appendChild(el('td', null, r[1]));
      t.appendChild(tr);
    });
    return t;
  }
  function b64(s) {
    var bin = atob(s), out = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) { out[i] = bin.charCodeAt(i); }
    return out;
  }
  function unseal(sealed, pass) {
    var enc = new TextEncoder();
    return crypto.subtle.importKey('raw', enc.encode(pass.trim()), 'PBKDF2', false, ['deriveKey']).then(function (k) {
      return crypto.subtle.deriveKey({name: 'PBKDF2', salt: b64(sealed.salt), iterations: sealed.iterations,
        hash: 'SHA-256'}, k, {name: 'AES-GCM', length: 256}, false, ['decrypt']);
    }).then(function (key) {
      return crypto.subtle.decrypt({name: 'AES-GCM', iv: b64(sealed.iv), additionalData: b64(sealed.ad)}, key,
        b64(sealed.ciphertext));
    }).then(function (plain) { return JSON.parse(new TextDecoder().decode(plain)); });
  }
  function statusOf(s) { return Object.prototype.hasOwnProperty.call(STATUS, s) ? s : 'unverified'; }
  function bandOf(b) { return Object.prototype.hasOwnProperty.call(RISK, b) ? b : 'not covered'; }

  function leadPopup(P, f, r) {
    var box = el('div');
    var st = statusOf(r[f.status]);
    if (r[f.chip] && /^data:image\/png;base64,[A-Za-z0-9+\/=]+$/.test(r[f.chip])) {
      var img = el('img', 'ft-chip'); img.src = r[f.chip]; img.alt = 'image chip of the site'; box.appendChild(img);
    }
    box.appendChild(el('b', null, 'Lead - not a finding (' + st.replace('_', ' ') + ')'));
    var pc = P.perClass || {}, lab = r[f.label];
    var m = Object.prototype.hasOwnProperty.call(pc, lab) && pc[lab].precision !== undefined ? pc[lab] : (P.metrics || {});
    box.appendChild(table([['class', r[f.label]], ['score', Number(r[f.score]).toFixed(3)], ['status', st],
      ['acquired', r[f.acquired]], ['scene', r[f.scene]], ['detector', r[f.detector]],
      ['tested precision', m.precision !== undefined ? Number(m.precision).toFixed(2) : 'not recorded'],
      ['tested recall', m.recall !== undefined ? Number(m.recall).toFixed(2) : 'not recorded'],
      ['site', r[f.site]]]));
    box.appendChild(el('div', null, 'Record what you verified (then redraw the map):'));
    box.appendChild(el('code', 'ft-cmd', 'fieldtruth review decide ' + P.run + ' ' + r[f.site] +
      ' --decision confirmed|rejected|uncertain|field-visit --method imagery|field|other --reviewer YOUR_ID'));
    return box;
  }
  function index(fields) { var f = {}; fields.forEach(function (n, i) { f[n] = i; }); return f; }
  function clusterGroup(colour, cls) {
    return L.markerClusterGroup({chunkedLoading: true, showCoverageOnHover: false, maxClusterRadius: 50,
      iconCreateFunction: function (c) {
        var icon = L.divIcon({html: '<div style="background:' + colour + '">' + Number(c.getChildCount()) +
          '</div>', className: 'ft-cluster ' + cls, iconSize: L.point(40, 40)});
        return icon;
      }});
  }
  function addLeads(P, map, overlays) {
    var f = index(P.leads.fields), by = {};
    Object.keys(STATUS).forEach(function (s) { by[s] = []; });
    P.leads.rows.forEach(function (r) { by[statusOf(r[f.status])].push(r); });
    Object.keys(STATUS).forEach(function (s) {
      var rows = by[s];
      var group = rows.length > CLUSTER_MIN ? clusterGroup(STATUS[s], 'ft-cluster-' + s) : L.layerGroup();
      var markers = rows.map(function (r) {
        var m = L.circleMarker([r[f.lat], r[f.lon]], {radius: 7, color: '#1a1a1a', weight: 1.5, fillColor: STATUS[s],
          fillOpacity: 0.9, className: 'ft-lead ft-status-' + s});
        m.bindPopup(function () { return leadPopup(P, f, r); }, {maxWidth: 380, minWidth: 260, autoPanPaddingTopLeft: L.point(20, 90)});
        return m;
      });
      if (group.addLayers) { group.addLayers(markers); } else { markers.forEach(function (m) { group.addLayer(m); }); }
      group.addTo(map);
      overlays['<span class="sw round" style="background:' + STATUS[s] + '"></span>Leads: ' + s.replace('_', ' ') +
        ' (' + rows.length + ')'] = group;
    });
  }
  function addSectors(P, map, overlays) {
    var f = P.sectors.fields, many = P.sectors.rows.length > CLUSTER_MIN;
    var group = many ? clusterGroup('#1b7837', 'ft-cluster-sector') : L.layerGroup();
    var markers = P.sectors.rows.map(function (r) {
      var m = L.circleMarker([r[0], r[1]], {radius: 4, color: '#0b3d1b', weight: 1, fillColor: '#1b7837',
        fillOpacity: 0.8, className: 'ft-sector'});
      m.bindPopup(function () {
        var box = el('div'); box.appendChild(el('b', null, 'Sector site (from a labour-sector dataset)'));
        box.appendChild(table(f.slice(2).map(function (name, i) { return [name, r[i + 2]]; }))); return box;
      });
      return m;
    });
    if (group.addLayers) { group.addLayers(markers); } else { markers.forEach(function (m) { group.addLayer(m); }); }
    group.addTo(map);
    overlays['Sector sites (' + P.sectors.rows.length + ')'] = group;
  }
  function addCoverage(P, map, overlays) {
    var g = L.layerGroup();
    L.geoJSON(P.coverage.tiles, {
      style: function (ft) {
        var s = ft.properties.status;
        if (s === 'covered') { return {color: '#4d7d4d', weight: 1, fill: false, interactive: false}; }
        if (s === 'partial') { return {color: '#555', weight: 1, fillOpacity: 1, className: 'ft-partial'}; }
        return {color: '#222', weight: 1.5, fillOpacity: 1, className: 'ft-nocov'};
      },
      onEachFeature: function (ft, layer) {
        var p = ft.properties;
        if (p.status === 'covered') { return; }
        layer.bindTooltip(function () {
          var box = el('div');
          box.appendChild(el('b', null, p.status === 'partial' ? 'partial: gaps here are NOT low risk' : P.notCovered));
          box.appendChild(table([['tile', p.tile], ['status', p.status], ['valid', Math.round(p.valid * 100) + '%'],
            ['error', p.error]]));
          return box;
        }, {sticky: true});
      }
    }).addTo(g);
    L.geoJSON(P.coverage.labels, {style: {stroke: false, fill: false}, interactive: false,
      onEachFeature: function (ft, layer) {
        layer.bindTooltip(el('span', null, ft.properties.label), {permanent: true, direction: 'center',
          className: 'ft-nocov-label'});
      }}).addTo(g);
    g.addTo(map);
    overlays['Imagery coverage (hatched: not covered)'] = g;
  }
  function addRisk(P, map, overlays) {
    var layer = L.geoJSON(P.risk, {
      style: function (ft) {
        var n = ft.properties.count;
        if (n !== undefined) {  // lead counts per cell (no risk run): darker red = more leads
          return {color: '#7a1212', weight: 1, fillColor: '#d7191c', fillOpacity: Math.min(0.15 + 0.07 * n, 0.8),
            className: 'ft-cell ft-count'};
        }
        var b = bandOf(ft.properties.band);
        if (b === 'not covered') { return {color: '#222', weight: 1, fillOpacity: 1, className: 'ft-cell ft-nocov'}; }
        return {color: '#7a1212', weight: 1, fillColor: RISK[b], fillOpacity: 0.35,
          className: 'ft-cell ft-band-' + b};
      },
      onEachFeature: function (ft, l) {
        var p = ft.properties;
        l.bindTooltip(function () {
          var box = el('div');
          box.appendChild(el('b', null, p.count !== undefined ? p.count + ' leads in this cell (not findings)'
            : 'Risk: ' + bandOf(p.band)));
          box.appendChild(table([['cell', p.cell], ['score', p.score], ['why', p.why]]));
          return box;
        }, {sticky: true});
      }
    });
    layer.addTo(map);
    overlays[esc(P.riskName)] = layer;
    return layer;
  }
  function swatch(colour, extra) {
    var s = el('span', 'sw' + (extra ? ' ' + extra : '')); if (colour) { s.style.background = colour; } return s;
  }
  function line(box, sw, text) { var d = el('div'); if (sw) { d.appendChild(sw); } d.appendChild(document.createTextNode(text)); box.appendChild(d); }
  function legend(P) {
    var box = document.getElementById('ft-legend');
    box.textContent = '';
    if (P.leads) {
      box.appendChild(el('h4', null, 'Leads by review status'));
      Object.keys(STATUS).forEach(function (s) { line(box, swatch(STATUS[s], 'round'), s.replace('_', ' ') + ': ' + (P.counts[s] || 0)); });
    }
    if (P.risk) {
      box.appendChild(el('h4', null, P.riskName));
      if (P.riskCounts) { line(box, swatch('#d7191c'), 'darker = more leads; cells under ' + P.minCount + ' hidden'); }
      else { ['low', 'medium', 'high'].forEach(function (b) { line(box, swatch(RISK[b]), b + ' risk'); }); }
    }
    box.appendChild(el('h4', null, 'Imagery coverage'));
    line(box, swatch(null, 'hatch-light'), 'partial: gaps are NOT low risk');
    line(box, swatch(null, 'hatch'), P.notCovered);
    if (P.sectors) { line(box, swatch('#1b7837', 'round'), 'sector site (dataset, not a detection)'); }
    line(box, null, 'Imagery dates: ' + (P.dates || 'unknown'));
    line(box, null, 'Run ' + P.run + ', map made ' + P.made);
    var card = el('details'); card.appendChild(el('summary', null, 'Model card (detector tested on held-out scenes)'));
    if (P.card) {
      var m = P.metrics || {};
      card.appendChild(table(Object.keys(m).map(function (k) { return [k, m[k]]; })));
      var a = el('a', null, 'download model_card.json');
      a.download = 'model_card.json';
      a.href = 'data:application/json;charset=utf-8,' + encodeURIComponent(JSON.stringify(P.card, null, 2));
      card.appendChild(a);
    } else { card.appendChild(el('div', null, 'No model card in this run.')); }
    box.appendChild(card);
    box.hidden = false;
  }
  function build(P) {
    document.getElementById('ft-map').hidden = false;
    var map = L.map('ft-map', {zoomControl: true, maxZoom: 19, minZoom: 2});
    if (P.bounds) { map.fitBounds(P.bounds); } else { map.setView([0, 0], 2); }
    map.attributionControl.setPrefix('Leaflet 1.9.4 (BSD-2-Clause), offline copy');
    var bases = {}, overlays = {};
    if (P.basemap) {
      bases['Online basemap (reveals the area viewed)'] = L.tileLayer(P.basemap.url, {maxZoom: 19,
        attribution: esc(P.basemap.attribution)}).addTo(map);
    }
    if (P.quicklook) {
      overlays['Scanned imagery quicklook (' + esc(P.dates || 'dates unknown') + ')'] =
        L.imageOverlay(P.quicklook.uri, P.quicklook.bounds, {className: 'ft-quicklook'}).addTo(map);
    }
    if (P.coverage) { addCoverage(P, map, overlays); }
    var risk = P.risk ? addRisk(P, map, overlays) : null;
    if (P.sectors) { addSectors(P, map, overlays); }
    if (P.leads) { addLeads(P, map, overlays); }
    L.control.layers(bases, overlays, {collapsed: false}).addTo(map);
    L.control.scale({position: 'bottomright'}).addTo(map);
    if (!P.bounds && risk && risk.getLayers().length) { map.fitBounds(risk.getBounds()); }
    legend(P);
    document.body.setAttribute('data-ft-ready', '1');
  }
  function start() {
    if (D.payload) { build(D.payload); return; }
    var form = document.getElementById('ft-unlock'), input = document.getElementById('ft-pass'),
      err = document.getElementById('ft-error');
    form.hidden = false; input.focus();
    form.addEventListener('submit', function (ev) {
      ev.preventDefault();
      err.textContent = 'Decrypting...';
      unseal(D.sealed, input.value).then(function (P) {
        form.remove(); build(P);
      }, function () {
        err.textContent = 'Wrong passphrase (or the file was altered): nothing was decrypted.';
        input.value = ''; input.focus();
      });
    });
  }
  start();
})();
