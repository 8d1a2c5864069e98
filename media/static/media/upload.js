// Multi-file drag-and-drop upload: one XHR per file, each with its own progress bar and error line.
(function () {
  "use strict";
  const form = document.getElementById("upload-form");
  if (!form) return;
  const zone = document.getElementById("dropzone");
  const input = document.getElementById("upload-input");
  const list = document.getElementById("upload-list");
  const url = form.dataset.uploadUrl;
  const csrf = form.querySelector("input[name=csrfmiddlewaretoken]").value;

  function row(file) {
    const li = document.createElement("li");
    const name = document.createElement("span");
    name.textContent = file.name + " ";
    const bar = document.createElement("progress");
    bar.max = 100;
    bar.value = 0;
    const note = document.createElement("span");
    note.className = "muted";
    li.append(name, bar, " ", note);
    list.prepend(li);
    return { li, bar, note };
  }

  function send(file) {
    const ui = row(file);
    const data = new FormData();
    data.append("file", file);
    data.append("library", form.querySelector("[name=library]").value);
    data.append("tags", form.querySelector("[name=tags]").value);
    const xhr = new XMLHttpRequest();
    xhr.open("POST", url);
    xhr.setRequestHeader("X-CSRFToken", csrf);
    xhr.setRequestHeader("Accept", "application/json");
    xhr.upload.addEventListener("progress", (e) => {
      if (e.lengthComputable) ui.bar.value = Math.round((e.loaded * 100) / e.total);
    });
    xhr.addEventListener("load", () => {
      let body = {};
      try { body = JSON.parse(xhr.responseText); } catch (err) { body = {}; }
      ui.bar.value = 100;
      if (xhr.status === 201 || xhr.status === 200) {
        const link = document.createElement("a");
        link.href = body.url;
        link.textContent = body.duplicate ? "already in the library: " + body.title : "uploaded";
        ui.note.replaceChildren(link);
        ui.li.className = body.duplicate ? "upload-dup" : "upload-ok";
      } else {
        ui.note.textContent = (body.error && body.error.message) || "Upload failed (" + xhr.status + ")";
        ui.li.className = "upload-error";
        ui.bar.remove();
      }
    });
    xhr.addEventListener("error", () => {
      ui.note.textContent = "Network error";
      ui.li.className = "upload-error";
    });
    xhr.send(data);
  }

  function sendAll(files) { Array.from(files).forEach(send); }

  input.addEventListener("change", () => { sendAll(input.files); input.value = ""; });
  ["dragenter", "dragover"].forEach((t) => zone.addEventListener(t, (e) => {
    e.preventDefault();
    zone.classList.add("dragging");
  }));
  ["dragleave", "drop"].forEach((t) => zone.addEventListener(t, (e) => {
    e.preventDefault();
    zone.classList.remove("dragging");
  }));
  zone.addEventListener("drop", (e) => sendAll(e.dataTransfer.files));
})();
