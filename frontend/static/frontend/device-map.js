// The devices list's map: Leaflet with OpenStreetMap tiles while the phone is online, the
// server-drawn SVG (#device-map-drawing) otherwise. The drawing is what the page shows without
// JavaScript; it comes back if the browser is offline, or if tiles fail before any has loaded
// (no network, a blocked tile server). Pins open a popup linking to the device's page.
(function () {
  "use strict";

  var live = document.getElementById("device-map-live");
  var drawing = document.getElementById("device-map-drawing");
  var source = document.getElementById("device-map-data");
  if (!live || !drawing || !source || typeof L === "undefined") return;
  if (navigator.onLine === false) {
    live.setAttribute("data-state", "offline");
    return;
  }
  var points = JSON.parse(source.textContent);
  if (!points.length) return;

  // Without a single tile after this long the network is as good as gone (a captive portal or
  // a dead link that never answers): show the drawing rather than an empty grey box.
  var PATIENCE_MS = 10000;
  var loaded = false;
  var done = false;

  live.hidden = false;
  drawing.hidden = true;
  var map = L.map(live, { scrollWheelZoom: false });
  var tiles = L.tileLayer(live.getAttribute("data-tiles"), {
    maxZoom: 19,
    attribution: live.getAttribute("data-attribution"),
  });

  function fallBack(reason) {
    if (done) return;
    done = true;
    map.remove();
    live.hidden = true;
    live.setAttribute("data-state", reason);
    drawing.hidden = false;
  }

  tiles.on("tileload", function () {
    if (done) return;
    loaded = true;
    live.setAttribute("data-state", "tiles");
  });
  tiles.on("tileerror", function () {
    if (!loaded) fallBack("tiles-failed");
  });
  window.addEventListener("offline", function () {
    if (!loaded) fallBack("offline");
  });
  window.setTimeout(function () {
    if (!loaded) fallBack("tiles-timeout");
  }, PATIENCE_MS);

  function popup(point) {
    var box = document.createElement("div");
    box.className = "map-popup";
    var name = document.createElement("strong");
    name.textContent = point.name;
    box.appendChild(name);
    if (point.place) {
      var place = document.createElement("span");
      place.className = "muted small";
      place.textContent = point.place;
      box.appendChild(place);
    }
    var state = document.createElement("span");
    state.className = "relay relay-" + point.relay;
    state.textContent = live.getAttribute(point.relay === "on" ? "data-on" : "data-off");
    box.appendChild(state);
    var link = document.createElement("a");
    link.className = "button";
    link.href = point.url;
    link.textContent = live.getAttribute("data-open");
    box.appendChild(link);
    return box;
  }

  var bounds = [];
  points.forEach(function (point) {
    var label = point.name + " (" + live.getAttribute(point.relay === "on" ? "data-on" : "data-off") + ")";
    var pin = L.marker([point.lat, point.lon], {
      icon: L.divIcon({ className: "map-pin map-pin-" + point.relay, iconSize: [44, 44], html: "<span></span>" }),
      title: label,
      alt: label,
      keyboard: true,
    });
    pin.bindPopup(function () { return popup(point); });
    pin.on("add", function () {
      var el = pin.getElement();
      if (el) {
        el.setAttribute("data-public-id", point.id);
        el.setAttribute("aria-label", label);
        el.setAttribute("role", "button");
      }
    });
    pin.addTo(map);
    bounds.push([point.lat, point.lon]);
  });
  if (bounds.length === 1) {
    map.setView(bounds[0], 17);
  } else {
    map.fitBounds(bounds, { padding: [30, 30], maxZoom: 18 });
  }
  tiles.addTo(map);
})();
