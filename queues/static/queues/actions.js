// The dashboard's actions are plain POST forms (with Django's CSRF token). A form with
// data-jq-confirm (on the form, or on the button that sends it) asks that question first
// and is not sent unless the operator agrees.
// A form with data-jq-selection also sends the rows ticked in the table it names.
(function () {
  "use strict";
  document.addEventListener("submit", (event) => {
    const form = event.target;
    if (!(form instanceof HTMLFormElement)) return;
    const selection = form.dataset.jqSelection;
    if (selection) {
      form.querySelectorAll("input[data-jq-picked]").forEach((input) => input.remove());
      const picked = document.querySelectorAll(selection + " input[data-jq-pick]:checked");
      picked.forEach((box) => {
        const input = document.createElement("input");
        input.type = "hidden";
        input.name = "ids";
        input.value = box.value;
        input.dataset.jqPicked = "";
        form.appendChild(input);
      });
    }
    const button = event.submitter;
    const question = (button && button.dataset.jqConfirm) || form.dataset.jqConfirm;
    if (question && !window.confirm(question)) event.preventDefault();
  });
  document.addEventListener("change", (event) => {
    const all = event.target;
    if (!(all instanceof HTMLInputElement) || !all.dataset.jqPickAll) return;
    document.querySelectorAll(all.dataset.jqPickAll + " input[data-jq-pick]")
      .forEach((box) => { box.checked = all.checked; });
  });
})();
