// Draws every [data-chart] holder with uPlot from its json_script payload: {title, kind ("bars"
// or "line"), unit, scale (decimals between the integer values and the unit), period, labels,
// series: [{label, values}], fit (optional: the y axis spans the values instead of starting at
// zero)}; a null value is a gap. The table under each chart holds the same figures; the canvas is
// an image to assistive technology, labelled with the chart's one-sentence summary.
(function () {
  "use strict";

  var COLOURS = ["#15803d", "#b45309", "#1d4ed8", "#7c3aed"];
  var HEIGHT = 220;
  // Label steps, in periods: every hour, every 2, 3, 4, 6, 12...
  var STEPS = [1, 2, 3, 4, 6, 8, 12, 24, 48];

  function alpha(colour, hex) {
    return colour + hex;
  }

  function seriesOptions(payload, bars) {
    var count = payload.series.length;
    return payload.series.map(function (s, i) {
      var colour = COLOURS[i % COLOURS.length];
      var options = { label: s.label, stroke: colour, width: bars ? 1 : 2, fill: alpha(colour, bars ? "cc" : "22") };
      if (bars) {
        // Side by side: with two series the first leans left of its period, the second right.
        var align = count === 1 ? 0 : (i === 0 ? -1 : 1);
        options.paths = uPlot.paths.bars({ size: [count === 1 ? 0.7 : 0.4, 60], align: align });
        options.points = { show: false };
      } else {
        options.points = { show: payload.labels.length <= 31, size: 5 };
      }
      return options;
    });
  }

  function draw(holder) {
    var source = document.getElementById(holder.getAttribute("data-chart"));
    if (!source || typeof uPlot === "undefined") return;
    var payload = JSON.parse(source.textContent);
    var divisor = Math.pow(10, payload.scale);
    var xs = payload.labels.map(function (_, i) { return i; });
    var ys = payload.series.map(function (s) {
      return s.values.map(function (v) { return v == null ? null : v / divisor; });
    });
    var bars = payload.kind === "bars";
    var width = Math.max(holder.clientWidth, 200);
    var options = {
      width: width,
      height: HEIGHT,
      legend: { show: payload.series.length > 1 },
      cursor: { drag: { x: false, y: false } },
      scales: {
        x: { time: false, range: [-0.6, xs.length - 0.4] },
        y: {
          range: function (u, min, max) {
            // "fit": frequencies live in a narrow band far from zero; show the band.
            if (payload.fit && min != null) {
              var pad = Math.max((max - min) * 0.1, 1 / divisor);
              return [min - pad, max + pad];
            }
            return [Math.min(0, min), max > 0 ? max * 1.1 : 1];
          },
        },
      },
      axes: [
        {
          space: 44,
          incrs: STEPS,
          values: function (u, splits) {
            return splits.map(function (i) { return Number.isInteger(i) ? (payload.labels[i] || "") : ""; });
          },
        },
        { label: payload.unit, size: 60, labelSize: 18 },
      ],
      series: [{ label: payload.period, value: function (u, i) { return i == null ? "" : payload.labels[i]; } }]
        .concat(seriesOptions(payload, bars)),
    };
    holder.replaceChildren();
    var plot = new uPlot(options, [xs].concat(ys), holder);
    var canvas = holder.querySelector("canvas");
    if (canvas) {
      canvas.setAttribute("role", "img");
      canvas.setAttribute("aria-label", holder.getAttribute("data-chart-label") || payload.title);
    }
    holder.setAttribute("data-drawn", "true");
    if (typeof ResizeObserver !== "undefined") {
      new ResizeObserver(function () {
        var now = Math.max(holder.clientWidth, 200);
        if (now !== plot.width) plot.setSize({ width: now, height: HEIGHT });
      }).observe(holder);
    }
  }

  function drawAll() {
    document.querySelectorAll("[data-chart]").forEach(draw);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", drawAll);
  } else {
    drawAll();
  }
})();
