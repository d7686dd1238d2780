// 路长制工作台: the little script the pages need. Coordinates arrive already in the
// tiles' datum (the server shifts WGS 84 to GCJ-02 for Amap/Tencent tiles), so nothing
// here converts anything.
(function () {
  "use strict";

  function baseMap(element) {
    // maxZoom: clustering needs one even when no tiles give it.
    var map = L.map(element, { attributionControl: true, maxZoom: 19 });
    var tiles = element.dataset.tiles;
    if (tiles) {
      L.tileLayer(tiles, { maxZoom: 19, attribution: element.dataset.attribution || "" }).addTo(map);
    }
    return map;
  }

  function caseMap(element) {
    var point = [parseFloat(element.dataset.lat), parseFloat(element.dataset.lon)];
    var map = baseMap(element);
    map.setView(point, 17);
    L.circleMarker(point, { radius: 8, color: "#b3261e", weight: 3 }).addTo(map);
    // Where the photos were taken (EXIF), beside the case: far apart is worth a look.
    var places = JSON.parse(element.dataset.photos || "[]");
    var bounds = L.latLngBounds([point]);
    places.forEach(function (p) {
      var at = [p.lat, p.lon];
      L.circleMarker(at, { radius: 6, color: "#1a73e8", weight: 2 }).bindTooltip(p.label).addTo(map);
      L.polyline([point, at], { color: "#1a73e8", weight: 1, dashArray: "4 4" }).addTo(map);
      bounds.extend(at);
    });
    if (places.length) { map.fitBounds(bounds.pad(0.3), { maxZoom: 18 }); }
    element.dataset.photoPlaces = String(places.length);
  }

  // Cases as clustered markers (Leaflet.markercluster), each leading to its page.
  function caseClusters(map, url) {
    if (!url || typeof L.markerClusterGroup !== "function") { return; }
    fetch(url, { credentials: "same-origin" })
      .then(function (r) { return r.json(); })
      .then(function (data) {
        var cluster = L.markerClusterGroup({ showCoverageOnHover: false });
        data.features.forEach(function (f) {
          var c = f.geometry.coordinates;
          var m = L.circleMarker([c[1], c[0]], { radius: 7, color: "#b3261e", weight: 2, fillOpacity: 0.7 });
          m.bindTooltip(f.properties.label);
          m.on("click", function () { window.location = f.properties.href; });
          cluster.addLayer(m);
        });
        map.addLayer(cluster);
        map.getContainer().dataset.casesLoaded = String(data.features.length);
      });
  }

  var STYLE = {
    jurisdiction: { color: "#0d3b66", weight: 2, fillOpacity: 0.04 },
    cell: { color: "#888", weight: 0.5, fillOpacity: 0 },
    segment: { color: "#1b7f3b", weight: 3 },
  };

  function territoryMap(element) {
    var map = baseMap(element);
    fetch(element.dataset.src, { credentials: "same-origin" })
      .then(function (r) { return r.json(); })
      .then(function (data) {
        var layer = L.geoJSON(data, {
          style: function (f) { return STYLE[f.properties.layer] || {}; },
          pointToLayer: function (f, latlng) {
            return L.circleMarker(latlng, { radius: 6, color: "#b3261e" });
          },
          onEachFeature: function (f, l) {
            if (f.properties.label) { l.bindTooltip(f.properties.label); }
            if (f.properties.href) { l.on("click", function () { window.location = f.properties.href; }); }
          },
        }).addTo(map);
        var bounds = layer.getBounds();
        if (bounds.isValid()) { map.fitBounds(bounds); } else { map.setView([34.75, 113.65], 13); }
        element.dataset.loaded = String(data.features.length);
        caseClusters(map, element.dataset.cases);  // once the map has its view
      });
  }

  function getJSON(url) {
    return fetch(url, { credentials: "same-origin" }).then(function (r) { return r.json(); });
  }

  // A coloured layer (heat, coverage) over the territory: the server picks each feature's
  // colour, so the legend on the page and the map cannot disagree.
  function overlayMap(element) {
    var map = baseMap(element);
    Promise.all([getJSON(element.dataset.base), getJSON(element.dataset.src)]).then(function (got) {
      var base = L.geoJSON(got[0], {
        style: function (f) { return f.properties.layer === "jurisdiction" ? STYLE.jurisdiction : { color: "#9aa0a6", weight: 1 }; },
      }).addTo(map);
      var overlay = L.geoJSON(got[1], {
        style: function (f) {
          var colour = f.properties.color;
          return f.geometry.type.indexOf("Polygon") >= 0
            ? { color: colour, weight: 1, fillColor: colour, fillOpacity: 0.6 }
            : { color: colour, weight: 3, opacity: 0.9 };
        },
        onEachFeature: function (f, l) { if (f.properties.label) { l.bindTooltip(f.properties.label); } },
      }).addTo(map);
      var bounds = base.getBounds();
      if (overlay.getBounds().isValid()) { bounds = bounds.isValid() ? bounds.extend(overlay.getBounds()) : overlay.getBounds(); }
      if (bounds.isValid()) { map.fitBounds(bounds); } else { map.setView([34.75, 113.65], 13); }
      element.dataset.loaded = String(got[1].features.length);
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-print]").forEach(function (b) {
      b.addEventListener("click", function () { window.print(); });
    });
    if (typeof L === "undefined") { return; }
    var c = document.getElementById("case-map");
    if (c) { caseMap(c); }
    var t = document.getElementById("territory-map");
    if (t) { territoryMap(t); }
    var o = document.getElementById("overlay-map");
    if (o) { overlayMap(o); }
  });
})();
