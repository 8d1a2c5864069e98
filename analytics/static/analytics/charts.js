// Charts of the analytics pages, drawn with the vendored Chart.js from data the page carries in a
// <script type="application/json"> block (Django's json_script): no inline script, so the
// Content-Security-Policy stays `script-src 'self'`. Every chart has a table beside it with the same
// figures; the canvas is a picture of that table (role="img" with a label).
//
//   <canvas data-chart="ID"></canvas>  +  {{ spec|json_script:"ID" }}
//   spec = {type: "line" | "bar", labels: [...], series: [{label, data: [...], kind?: "markers"}], percent?,
//           sparkline?: true (no axes, no legend)}
(function () {
  "use strict";
  var COLOURS = ["#1d4ed8", "#b45309", "#047857", "#7c3aed", "#be123c"];

  function dataset(series, index) {
    var colour = series.kind === "markers" ? "#dc2626" : COLOURS[index % COLOURS.length];
    var out = {
      label: series.label,
      data: series.data,
      borderColor: colour,
      backgroundColor: colour,
      borderWidth: 2,
      pointRadius: 0,
      spanGaps: false,
    };
    if (series.kind === "markers") {
      out.type = "line";
      out.showLine = false;
      out.pointRadius = 6;
      out.pointStyle = "triangle";
    }
    if (series.dashed) {
      out.borderDash = [6, 4];
    }
    return out;
  }

  function draw(canvas) {
    var source = document.getElementById(canvas.dataset.chart);
    if (!source || typeof window.Chart === "undefined") {
      return;
    }
    var spec = JSON.parse(source.textContent);
    var percent = function (value) {
      return spec.percent ? (value * 100).toFixed(1) + " %" : value;
    };
    var options = {
      responsive: true,
      maintainAspectRatio: false,
      animation: false,
      interaction: { mode: "index", intersect: false },
      scales: { y: { beginAtZero: true, ticks: { callback: percent } } },
      plugins: { legend: { position: "bottom" } },
    };
    if (spec.sparkline) {
      // a KPI's trend in a small box: no axes or legend (the table beside holds the figures)
      options.scales = { x: { display: false }, y: { display: false, beginAtZero: true } };
      options.plugins = { legend: { display: false } };
    }
    new window.Chart(canvas, {
      type: spec.type || "line",
      data: { labels: spec.labels, datasets: spec.series.map(dataset) },
      options: options,
    });
  }

  function drawAll() {
    document.querySelectorAll("canvas[data-chart]").forEach(draw);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", drawAll);
  } else {
    drawAll();
  }
})();
