// 路长制工作台: the little script the pages need. Coordinates arrive already in the
// tiles' datum (the server shifts WGS 84 to GCJ-02 for Amap/Tencent tiles), so nothing
// here converts anything.
(function () {
  "use strict";

  function baseMap(element) {
    var map = L.map(element, { attributionControl: true });
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
  });
})();
