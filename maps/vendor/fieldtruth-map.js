/* fieldtruth's own page script (not vendored; same licence as fieldtruth).
 * Reads window.FT_DATA = {sealed: {...}} (AES-GCM, PBKDF2-HMAC-SHA256 key) or {payload: {...}},
 * decrypts with WebCrypto after the passphrase is typed, then draws the map. Every data string is put on
 * screen with textContent (or esc() where Leaflet wants HTML), never parsed as markup. Decisions recorded
 * on the device live in fieldtruth-decide.js (window.FTDecide), which this script calls when the payload
 * has "decide". Geolocation is asked for only when the person presses a button. */
(function () {
  'use strict';
  var D = window.FT_DATA || {};
  var STATUS = {unverified: '#ff8c00', confirmed: '#d7191c', field_visit: '#2c7bb6', uncertain: '#8e44ad',
    rejected: '#8c8c8c'};
  var RISK = {'not covered': '#6b6b6b'};  // the bands' fills and opacity come from the payload (maps/layers.py)
  var RISK_OPACITY = 0.6;
  var CLUSTER_MIN = 300;
  var PHONE = window.matchMedia && window.matchMedia('(max-width: 700px)').matches;

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) { e.className = cls; }
    if (text !== undefined && text !== null) { e.textContent = String(text); }
    return e;
  }
  function esc(s) {
    return String(s).replace(/[&<>"'`]/g, function (c) { return '&#' + c.charCodeAt(0) + ';'; });
  }
  function has(o, k) { return Object.prototype.hasOwnProperty.call(o, k); }
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
  function statusOf(s) { return has(STATUS, s) ? s : 'unverified'; }
  function bandOf(b) { return has(RISK, b) ? b : 'not covered'; }
  function words(s) { return String(s).replace('_', ' '); }
  function toast(text, ms) {
    var t = document.getElementById('ft-toast');
    if (!t) { t = el('div', 'ft-toast'); t.id = 'ft-toast'; t.setAttribute('role', 'status'); document.body.appendChild(t); }
    t.textContent = text; t.hidden = false;
    clearTimeout(t._timer); t._timer = setTimeout(function () { t.hidden = true; }, ms || 4000);
  }
  function onSubmit(form, handler) {
    /* The submit button's click (Enter in a field clicks it too), not the form's submit event: a sandboxed
     * frame, as some phones open downloaded files, blocks form submission before that event is fired. */
    form.querySelector('[type=submit]').addEventListener('click', function (ev) { ev.preventDefault(); handler(); });
  }
  function top() { var b = document.querySelector('.ft-banner'); return b ? b.getBoundingClientRect().bottom : 0; }
  function layout() { document.documentElement.style.setProperty('--ft-top', Math.ceil(top()) + 'px'); }

  /* ---- leads ---- */
  function leadPopup(S, r) {
    var P = S.P, f = S.f, box = el('div', 'ft-lead-popup');
    var st = S.statusOf(r);
    if (r[f.chip] && /^data:image\/png;base64,[A-Za-z0-9+\/=]+$/.test(r[f.chip])) {
      var img = el('img', 'ft-chip'); img.src = r[f.chip]; img.alt = 'image chip of the site'; box.appendChild(img);
    }
    box.appendChild(el('b', null, 'Lead - not a finding (' + words(st) + ')'));
    var where = el('div', 'ft-where'), lat = Number(r[f.lat]).toFixed(6), lon = Number(r[f.lon]).toFixed(6);
    where.appendChild(document.createTextNode(lat + ', ' + lon + ' '));
    var geo = el('a', null, 'open in map app'); geo.href = 'geo:' + lat + ',' + lon; where.appendChild(geo);
    box.appendChild(where);
    if (r[f.cellBand] === 'not covered') {
      box.appendChild(el('div', 'ft-explain', 'This lead lies in a risk cell marked "not covered": most of that ' +
        'cell had no usable imagery, so its risk could not be scored. The lead itself was seen on the part that ' +
        'had imagery (scene ' + r[f.scene] + ', ' + r[f.acquired] + '). The rest of the cell was not looked at.'));
    }
    var pc = P.perClass || {}, lab = r[f.label];
    var m = has(pc, lab) && pc[lab].precision !== undefined ? pc[lab] : (P.metrics || {});
    box.appendChild(table([['site', r[f.site]], ['class', r[f.label]], ['score', Number(r[f.score]).toFixed(3)],
      ['status', words(st)], ['acquired', r[f.acquired]], ['scene', r[f.scene]], ['detector', r[f.detector]],
      ['tested precision', m.precision !== undefined ? Number(m.precision).toFixed(2) : 'not recorded'],
      ['tested recall', m.recall !== undefined ? Number(m.recall).toFixed(2) : 'not recorded']]
      .concat(r[f.firstSeen] ? [['first seen', r[f.firstSeen]]] : [])
      .concat(r[f.history] ? [['earlier decision', r[f.history]]] : [])));
    if (window.FTDecide && P.decide) { window.FTDecide.popupPart(box, r[f.site]); }
    var cli = el('details'); cli.appendChild(el('summary', null, 'Record it on the command line instead'));
    cli.appendChild(el('code', 'ft-cmd', 'fieldtruth review decide ' + P.run + ' ' + r[f.site] +
      ' --decision confirmed|rejected|uncertain|field-visit --method imagery|field|other --reviewer YOUR_ID'));
    box.appendChild(cli);
    return box;
  }
  function index(fields) { var f = {}; fields.forEach(function (n, i) { f[n] = i; }); return f; }
  function clusterGroup(colour, cls) {
    return L.markerClusterGroup({chunkedLoading: true, showCoverageOnHover: false, maxClusterRadius: 50,
      iconCreateFunction: function (c) {
        return L.divIcon({html: '<div style="background:' + colour + '">' + Number(c.getChildCount()) +
          '</div>', className: 'ft-cluster ' + cls, iconSize: L.point(40, 40)});
      }});
  }
  function popupOptions() {  // keep a popup clear of the banner and of the controls above the map
    var t = top();
    Array.prototype.forEach.call(document.querySelectorAll('.leaflet-top .leaflet-control'), function (c) {
      var r = c.getBoundingClientRect();
      if (r.height < 120) { t = Math.max(t, r.bottom); }  // not an open layer list (a wide screen's)
    });
    return {maxWidth: Math.min(380, window.innerWidth - 50), minWidth: Math.min(260, window.innerWidth - 60),
      maxHeight: Math.max(200, window.innerHeight - t - 60), autoPanPaddingTopLeft: L.point(10, t + 8),
      autoPanPaddingBottomRight: L.point(10, 40)};
  }
  function bindPopup(layer, content) {  // options measured when the popup opens (controls come later)
    layer.on('click', function () { var p = layer.getPopup(); if (p) { L.setOptions(p, popupOptions()); } });
    layer.bindPopup(content, popupOptions());
  }
  function addLeads(S) {
    var P = S.P, f = S.f;
    S.groups = {}; S.markers = {};
    Object.keys(STATUS).forEach(function (s) {
      var n = P.leads.rows.filter(function (r) { return S.statusOf(r) === s; }).length;
      S.groups[s] = n > CLUSTER_MIN ? clusterGroup(STATUS[s], 'ft-cluster-' + s) : L.layerGroup();
    });
    var by = {};
    P.leads.rows.forEach(function (r) {
      var s = S.statusOf(r);
      var m = L.circleMarker([r[f.lat], r[f.lon]], {radius: 8, color: '#1a1a1a', weight: 1.5, fillColor: STATUS[s],
        fillOpacity: 0.9, className: 'ft-lead ft-status-' + s});
      bindPopup(m, function () { return leadPopup(S, r); });
      m.ftStatus = s; m.ftRow = r;
      S.markers[r[f.site]] = m;
      (by[s] = by[s] || []).push(m);
    });
    Object.keys(STATUS).forEach(function (s) {
      var g = S.groups[s], ms = by[s] || [];
      if (g.addLayers) { g.addLayers(ms); } else { ms.forEach(function (m) { g.addLayer(m); }); }
      g.addTo(S.map);
    });
  }
  function restyle(S, site) {
    var m = S.markers[site]; if (!m) { return; }
    var s = S.statusOf(m.ftRow), local = window.FTDecide && window.FTDecide.localFor(site);
    if (s !== m.ftStatus) {
      S.groups[m.ftStatus].removeLayer(m); m.ftStatus = s; if (!m.ftHidden) { S.groups[s].addLayer(m); }
    }
    m.setStyle({fillColor: STATUS[s]});
    var path = m.getElement && m.getElement();
    if (path) {
      Object.keys(STATUS).forEach(function (k) { path.classList.remove('ft-status-' + k); });
      path.classList.add('ft-status-' + s); path.classList.toggle('ft-local', !!local);
    }
    if (m.isPopupOpen()) { m.setPopupContent(leadPopup(S, m.ftRow)); }
  }
  function counts(S) {
    var c = {}; Object.keys(STATUS).forEach(function (s) { c[s] = 0; });
    S.P.leads.rows.forEach(function (r) { c[S.statusOf(r)] += 1; });
    return c;
  }
  function findSite(S, text) {
    var q = String(text).trim().toLowerCase(); if (!q) { return null; }
    var ids = Object.keys(S.markers), exact = ids.filter(function (i) { return i.toLowerCase() === q; });
    if (exact.length) { return exact[0]; }
    var part = ids.filter(function (i) { return i.toLowerCase().indexOf(q) >= 0; });
    return part.length === 1 ? part[0] : (part.length ? part : null);
  }
  function openSite(S, site) {
    var m = S.markers[site]; if (!m) { return false; }
    var g = S.groups[m.ftStatus];
    var show = function () {
      S.map.setView(m.getLatLng(), Math.max(S.map.getZoom(), 15), {animate: false});
      L.setOptions(m.getPopup(), popupOptions()); m.openPopup();
    };
    if (g.zoomToShowLayer) { g.zoomToShowLayer(m, show); } else { show(); }
    return true;
  }

  /* ---- other layers ---- */
  function addSectors(P, map, overlays) {
    var f = P.sectors.fields, many = P.sectors.rows.length > CLUSTER_MIN;
    var group = many ? clusterGroup('#1b7837', 'ft-cluster-sector') : L.layerGroup();
    var markers = P.sectors.rows.map(function (r) {
      var m = L.circleMarker([r[0], r[1]], {radius: 4, color: '#0b3d1b', weight: 1, fillColor: '#1b7837',
        fillOpacity: 0.8, className: 'ft-sector'});
      bindPopup(m, function () {
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
        return {color: '#5a0d0d', weight: 1, fillColor: RISK[b], fillOpacity: RISK_OPACITY,
          className: 'ft-cell ft-band-' + b};
      },
      onEachFeature: function (ft, l) {
        var p = ft.properties;
        l.bindTooltip(function () {
          var box = el('div'), b = bandOf(p.band);
          box.appendChild(el('b', null, p.count !== undefined ? p.count + ' leads in this cell (not findings)'
            : (b === 'not covered' ? 'Risk: not covered (too little imagery to score; NOT low risk)' : 'Risk: ' + b)));
          box.appendChild(table([['cell', p.cell], ['score', p.score], ['why', p.why]]));
          if (P.leads && b === 'not covered') {
            box.appendChild(el('div', null, 'Leads drawn inside were found on the part of the cell that had imagery.'));
          }
          return box;
        }, {sticky: true});
      }
    });
    layer.addTo(map);
    overlays[esc(P.riskName)] = layer;
    return layer;
  }
  function addTowns(P, map, overlays) {
    var g = L.layerGroup();
    P.towns.rows.forEach(function (r) {
      var m = L.circleMarker([r[0], r[1]], {radius: 3, color: '#fff', weight: 1, fillColor: '#222', fillOpacity: 1,
        interactive: false, className: 'ft-town'});
      m.bindTooltip(el('span', null, r[2]), {permanent: true, direction: 'right', offset: L.point(4, 0),
        className: 'ft-town-label'});
      g.addLayer(m);
    });
    g.addTo(map);
    overlays['Towns over 15,000 people (GeoNames)'] = g;
  }

  /* ---- controls ---- */
  function control(position, cls, fill) {
    var C = L.Control.extend({onAdd: function () {
      var box = L.DomUtil.create('div', 'leaflet-bar ft-ctl ' + cls);
      L.DomEvent.disableClickPropagation(box); L.DomEvent.disableScrollPropagation(box);
      fill(box); return box;
    }});
    return new C({position: position});
  }
  function myPosition(map) {
    var mark = null;
    return control('topleft', 'ft-me-ctl', function (box) {
      var b = el('button'); b.type = 'button'; b.appendChild(el('span', 'ft-me-icon')); b.title = 'Show my position (asks this device; nothing is sent)';
      b.setAttribute('aria-label', 'Show my position');
      b.addEventListener('click', function () {
        if (!navigator.geolocation) { toast('This browser cannot tell the position.'); return; }
        toast('Asking this device for its position...');
        navigator.geolocation.getCurrentPosition(function (p) {
          var ll = [p.coords.latitude, p.coords.longitude];
          if (mark) { map.removeLayer(mark); }
          mark = L.layerGroup([L.circle(ll, {radius: p.coords.accuracy || 0, color: '#1f5fa8', weight: 1, fillOpacity: 0.1,
            interactive: false}), L.circleMarker(ll, {radius: 7, color: '#fff', weight: 2, fillColor: '#1f5fa8',
            fillOpacity: 1, className: 'ft-me'})]).addTo(map);
          map.setView(ll, Math.max(map.getZoom(), 14));
          toast('You are here: ' + ll[0].toFixed(5) + ', ' + ll[1].toFixed(5) + ' (\u00b1 ' + Math.round(p.coords.accuracy) + ' m)');
        }, function (e) { toast('No position: ' + e.message); }, {enableHighAccuracy: true, timeout: 20000, maximumAge: 60000});
      });
      box.appendChild(b);
    });
  }
  function search(S) {
    return control('topright', 'ft-search', function (box) {
      var form = el('form'), input = el('input'), go = el('button', null, 'Find'), msg = el('div', 'ft-search-msg');
      input.type = 'search'; input.placeholder = 'Site id'; input.setAttribute('aria-label', 'Find a site by its id');
      input.id = 'ft-search'; go.type = 'submit'; msg.hidden = true;
      form.appendChild(input); form.appendChild(go); box.appendChild(form); box.appendChild(msg);
      onSubmit(form, function () {
        var hit = findSite(S, input.value);
        msg.hidden = typeof hit === 'string';
        if (typeof hit === 'string') { openSite(S, hit); input.blur(); return; }
        msg.textContent = hit ? hit.length + ' sites match; type more of the id' : 'No site "' + input.value + '"';
      });
    });
  }
  function newSince(S) {  // show only the leads first seen after a date of an earlier run of the region
    return control('topright', 'ft-since', function (box) {
      var label = el('label', null, 'New since '), pick = el('select');
      pick.id = 'ft-since'; label.htmlFor = 'ft-since';
      pick.appendChild(el('option', null, 'all leads')).value = '';
      S.P.runDates.slice(0, -1).forEach(function (d) { pick.appendChild(el('option', null, d)).value = d; });
      box.appendChild(label); box.appendChild(pick);
      var msg = el('div', 'ft-search-msg'); msg.hidden = true; box.appendChild(msg);
      pick.addEventListener('change', function () {
        var d = pick.value, shown = 0;
        Object.keys(S.markers).forEach(function (site) {
          var m = S.markers[site], hide = !!d && !(String(m.ftRow[S.f.firstSeen] || '') > d);
          if (hide && !m.ftHidden) { S.groups[m.ftStatus].removeLayer(m); }
          if (!hide && m.ftHidden) { S.groups[m.ftStatus].addLayer(m); }
          m.ftHidden = hide; shown += hide ? 0 : 1;
        });
        msg.hidden = !d; msg.textContent = shown + ' lead(s) first seen after ' + d;
      });
    });
  }
  function legend(S) {
    var P = S.P, box = document.getElementById('ft-legend');
    box.textContent = '';
    box.appendChild(el('summary', null, 'Legend'));
    var body = el('div', 'ft-legend-body'); box.appendChild(body);
    if (P.leads) {
      var c = counts(S);
      body.appendChild(el('h4', null, 'Leads by review status'));
      Object.keys(STATUS).forEach(function (s) { line(body, swatch(STATUS[s], 'round'), words(s) + ': ' + c[s]); });
      var local = window.FTDecide && P.decide ? window.FTDecide.count() : 0;
      if (local) { line(body, swatch(null, 'ring'), local + ' decided on this device, not yet imported'); }
    }
    if (P.risk) {
      body.appendChild(el('h4', null, P.riskName));
      if (P.riskCounts) { line(body, swatch('#d7191c'), 'darker = more leads; cells under ' + P.minCount + ' hidden'); }
      else {
        ['low', 'medium', 'high'].forEach(function (b) {
          var sw = swatch(RISK[b]); sw.style.opacity = RISK_OPACITY; line(body, sw, b + ' risk');
        });
      }
    }
    body.appendChild(el('h4', null, 'Imagery coverage'));
    line(body, swatch(null, 'hatch-light'), 'partial: gaps are NOT low risk');
    line(body, swatch(null, 'hatch'), P.notCovered);
    if (P.sectors) { line(body, swatch('#1b7837', 'round'), 'sector site (dataset, not a detection)'); }
    if (P.towns) { line(body, swatch(null, 'town'), 'town over 15,000 people (GeoNames)'); }
    line(body, null, 'Imagery dates: ' + (P.dates || 'unknown'));
    line(body, null, 'Run ' + P.run + ', map made ' + P.made);
    var card = el('details'); card.appendChild(el('summary', null, 'Model card (detector tested on held-out scenes)'));
    if (P.card) {
      var m = P.metrics || {};
      card.appendChild(table(Object.keys(m).map(function (k) { return [k, m[k]]; })));
      var a = el('a', null, 'download model_card.json');
      a.download = 'model_card.json';
      a.href = 'data:application/json;charset=utf-8,' + encodeURIComponent(JSON.stringify(P.card, null, 2));
      card.appendChild(a);
    } else { card.appendChild(el('div', null, 'No model card in this run.')); }
    body.appendChild(card);
    box.hidden = false;
  }
  function swatch(colour, extra) {
    var s = el('span', 'sw' + (extra ? ' ' + extra : '')); if (colour) { s.style.background = colour; } return s;
  }
  function line(box, sw, text) { var d = el('div'); if (sw) { d.appendChild(sw); } d.appendChild(document.createTextNode(text)); box.appendChild(d); }
  function layersControl(S) {
    if (S.layers) { S.layers.remove(); }
    var overlays = {}, c = S.P.leads ? counts(S) : {};
    Object.keys(S.overlays).forEach(function (k) { overlays[k] = S.overlays[k]; });
    if (S.P.leads) {
      Object.keys(STATUS).forEach(function (s) {
        overlays['<span class="sw round" style="background:' + STATUS[s] + '"></span>Leads: ' + words(s) +
          ' (' + c[s] + ')'] = S.groups[s];
      });
    }
    S.layers = L.control.layers(S.bases, overlays, {collapsed: PHONE, position: 'topright'}).addTo(S.map);
  }

  function build(P) {
    layout();
    if (P.riskColours) { RISK = P.riskColours; }
    if (P.riskOpacity) { RISK_OPACITY = P.riskOpacity; }
    document.getElementById('ft-map').hidden = false;
    var map = L.map('ft-map', {zoomControl: true, maxZoom: 19, minZoom: 2});
    var S = {P: P, map: map, bases: {}, overlays: {}};
    S.f = P.leads ? index(P.leads.fields) : {};
    S.statusOf = function (r) {
      var local = window.FTDecide && P.decide ? window.FTDecide.localFor(r[S.f.site]) : null;
      return statusOf(local ? local.decision : r[S.f.status]);
    };
    if (P.bounds) { map.fitBounds(P.bounds); } else { map.setView([0, 0], 2); }
    var popupOpen = false;  // while a popup is open, no cell's hover box sits beside or over it
    map.on('popupopen', function () {
      popupOpen = true;
      map.eachLayer(function (l) { if (l instanceof L.Tooltip && !l.options.permanent) { l.close(); } });
    });
    map.on('popupclose', function () { popupOpen = false; });
    map.on('tooltipopen', function (e) {
      if (popupOpen && !e.tooltip.options.permanent) { setTimeout(function () { e.tooltip.close(); }, 0); }
    });
    map.attributionControl.setPrefix('Leaflet 1.9.4 (BSD-2-Clause), offline copy');
    if (P.basemap) {
      S.bases['Online basemap (reveals the area viewed)'] = L.tileLayer(P.basemap.url, {maxZoom: 19,
        attribution: esc(P.basemap.attribution)}).addTo(map);
    }
    if (P.quicklook) {
      S.overlays['Scanned imagery quicklook (' + esc(P.dates || 'dates unknown') + ')'] =
        L.imageOverlay(P.quicklook.uri, P.quicklook.bounds, {className: 'ft-quicklook'}).addTo(map);
    }
    if (P.coverage) { addCoverage(P, map, S.overlays); }
    var risk = P.risk ? addRisk(P, map, S.overlays) : null;
    if (P.sectors) { addSectors(P, map, S.overlays); }
    if (P.towns) { addTowns(P, map, S.overlays); map.attributionControl.addAttribution(esc(P.towns.attribution)); }
    if (P.leads) {
      if (window.FTDecide && P.decide) {
        window.FTDecide.init(P, {
          changed: function (site) { restyle(S, site); legend(S); layersControl(S); },
          saved: function () { map.closePopup(); },
          open: function (site) { return openSite(S, site); },
          basis: function (site) { var m = S.markers[site]; return m ? Number(m.ftRow[S.f.seq] || 0) : 0; },
          toast: toast, el: el, top: top
        });
      }
      addLeads(S);
      search(S).addTo(map);
      if (P.runDates && P.runDates.length > 1) { newSince(S).addTo(map); }
    }
    myPosition(map).addTo(map);
    layersControl(S);
    L.control.scale({position: 'bottomright'}).addTo(map);
    if (!P.bounds && risk && risk.getLayers().length) {  // a shared map: its cells and the towns around them
      var view = risk.getBounds();
      if (P.towns) { P.towns.rows.forEach(function (r) { view.extend([r[0], r[1]]); }); }
      map.fitBounds(view, {padding: [20, 20]});
    }
    legend(S);
    document.getElementById('ft-legend').open = !PHONE;
    window.addEventListener('resize', function () { layout(); map.invalidateSize(); });
    window.FTMap = S;
    document.body.setAttribute('data-ft-ready', '1');
  }
  function start() {
    layout();
    if (D.payload) { build(D.payload); return; }
    var form = document.getElementById('ft-unlock'), input = document.getElementById('ft-pass'),
      err = document.getElementById('ft-error');
    form.hidden = false; input.focus();
    onSubmit(form, function () {
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
