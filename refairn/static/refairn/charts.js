/* Draw Refairn's charts from json_script data: {labels: [...], series: {"USD": [...], ...}}. */
(function () {
  function draw(canvasId, dataId, type) {
    var canvas = document.getElementById(canvasId);
    var source = document.getElementById(dataId);
    if (!canvas || !source || typeof Chart === "undefined") { return; }
    var data = JSON.parse(source.textContent);
    var datasets = Object.keys(data.series || {}).map(function (currency) {
      return { label: currency, data: data.series[currency] };
    });
    canvas.chart = new Chart(canvas, {
      type: type || "bar",
      data: { labels: data.labels || [], datasets: datasets },
      options: {
        responsive: true,
        // Inside a sized .chart-box the chart fills the box (a phone keeps a usable height).
        maintainAspectRatio: !(canvas.parentElement && canvas.parentElement.classList.contains("chart-box")),
        animation: false,
        scales: { y: { beginAtZero: true } }
      }
    });
    canvas.setAttribute("data-rendered", "true");
  }
  window.refairnDraw = draw;
  document.addEventListener("DOMContentLoaded", function () {
    draw("rf-weekly", "rf-weekly-data", "bar");
    draw("rf-monthly", "rf-monthly-data", "bar");
  });
})();
