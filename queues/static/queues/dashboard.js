// The overview's charts: completed and failed jobs per minute (last hour) and per hour
// (last 24 h), for all queues or the one chosen. Data: the section's data-series-url
// (queues.http.dashboard.overview_series), read again every 10 s while the tab is visible;
// the section's data-completed is the last hour's completed total it drew (for tests).
(function () {
  "use strict";
  const REFRESH_MS = 10000;
  const section = document.querySelector(".jq-charts");
  if (!section || typeof Chart === "undefined") return;
  const picker = document.getElementById("jq-chart-queue");
  const charts = {};
  let data = null;

  function label(ms, span) {
    const when = new Date(ms);
    const hh = String(when.getHours()).padStart(2, "0");
    const mm = String(when.getMinutes()).padStart(2, "0");
    return span === "hour" ? hh + ":00" : hh + ":" + mm;
  }

  function draw(span) {
    const chosen = picker.value ? data.queues[picker.value] : data.all;
    if (!chosen) return;
    const series = chosen[span];
    const labels = series.starts_ms.map((ms) => label(ms, span));
    const datasets = [
      { label: "completed", data: series.completed, backgroundColor: "#3d9a4a" },
      { label: "failed", data: series.failed, backgroundColor: "#c0392b" },
    ];
    if (charts[span]) {
      charts[span].data.labels = labels;
      charts[span].data.datasets.forEach((set, i) => { set.data = datasets[i].data; });
      charts[span].update("none");
      return;
    }
    charts[span] = new Chart(document.getElementById("jq-chart-" + span), {
      type: "bar",
      data: { labels: labels, datasets: datasets },
      options: { animation: false, scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true } } },
    });
  }

  function load() {
    if (document.visibilityState !== "visible") return;
    fetch(section.dataset.seriesUrl, { credentials: "same-origin" })
      .then((reply) => (reply.ok ? reply.json() : null))
      .then((body) => {
        if (!body) return;
        data = body;
        draw("minute");
        draw("hour");
        const chosen = picker.value ? body.queues[picker.value] : body.all;
        section.dataset.completed = String(chosen.minute.completed.reduce((a, b) => a + b, 0));
      })
      .catch(() => {});
  }

  picker.addEventListener("change", () => { if (data) { draw("minute"); draw("hour"); } });
  document.addEventListener("visibilitychange", load);
  load();
  setInterval(load, REFRESH_MS);
})();
