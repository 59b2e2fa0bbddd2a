// report.html's script: sortable tables and the latent explorer. Everything it draws comes
// from the page itself (the explorer's images are inline PNG sprites in #explorer-data).
"use strict";

function sortTable(table, column, th) {
  const body = table.tBodies[0];
  const rows = Array.from(body.rows);
  const ascending = th.getAttribute("aria-sort") !== "ascending";
  const key = (row) => {
    const cell = row.cells[column];
    return cell.dataset.value !== undefined ? cell.dataset.value : cell.textContent;
  };
  const numeric = rows.every((row) => key(row) === "" || !isNaN(Number(key(row))));
  rows.sort((a, b) => {
    const x = key(a), y = key(b);
    if (x === "" || y === "") return (x === "") - (y === "");  // empty cells last
    const order = numeric ? Number(x) - Number(y) : String(x).localeCompare(String(y));
    return ascending ? order : -order;
  });
  for (const other of table.tHead.rows[0].cells) other.removeAttribute("aria-sort");
  th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
  for (const row of rows) body.appendChild(row);
}

for (const table of document.querySelectorAll("table.sortable")) {
  Array.from(table.tHead.rows[0].cells).forEach((th, column) => {
    th.addEventListener("click", () => sortTable(table, column, th));
  });
}

(function () {
  const source = document.getElementById("explorer-data");
  if (!source) return;
  const data = JSON.parse(source.textContent);
  const sprites = [];
  const load = (uri) => {
    const image = new Image();
    image.src = uri;
    sprites.push(image.decode());
    return image;
  };
  const images = load(data.images);
  const reconstructions = load(data.reconstructions);
  const decoded = {};
  for (const [label, uri] of Object.entries(data.decoded)) decoded[label] = load(uri);
  const select = document.getElementById("explorer-label");
  let ready = false, pending = null;

  function draw(canvasId, sheet, index, columns) {
    const canvas = document.getElementById(canvasId);
    const context = canvas.getContext("2d");
    const w = data.width, h = data.height;
    context.imageSmoothingEnabled = false;
    context.clearRect(0, 0, w, h);
    context.drawImage(sheet, (index % columns) * w, Math.floor(index / columns) * h, w, h, 0, 0, w, h);
    return canvas;
  }

  function nearest(values, v) {
    let best = 0;
    for (let i = 1; i < values.length; i++) {
      if (Math.abs(values[i] - v) < Math.abs(values[best] - v)) best = i;
    }
    return best;
  }

  function moveTo(x, y) {
    if (!ready) { pending = [x, y]; return; }
    const n = data.grid_columns;
    if (!n) return;  // a plane with no inverse (t-SNE)
    const column = nearest(data.grid_x, x), row = nearest(data.grid_y, y);
    const cell = row * n + column;
    const label = select ? select.value : Object.keys(decoded)[0];
    const canvas = draw("explorer-decoded", decoded[label], cell, n);
    const z = data.grid_latents[cell];
    canvas.dataset.cell = String(cell);
    canvas.dataset.label = label;
    canvas.dataset.z = JSON.stringify(z);
    const shown = z.map((v) => v.toFixed(2)).join(", ");
    const on = label === "-1" ? "" : `, y = ${label}`;
    document.getElementById("explorer-z").textContent =
      `${data.axes[0]} = ${data.grid_x[column].toFixed(2)}, ${data.axes[1]} = ` +
      `${data.grid_y[row].toFixed(2)}: decoder mean at z = (${shown})${on}`;
  }

  function hoverPoint(indices) {
    if (!ready || !indices || !indices.length) return;
    const i = indices[0];
    draw("explorer-image", images, i, data.columns).dataset.index = String(i);
    draw("explorer-recon", reconstructions, i, data.columns).dataset.index = String(i);
    const label = data.labels[i] >= 0 ? `, label ${data.labels[i]}` : "";
    document.getElementById("explorer-point").textContent =
      `test image ${data.indices[i]}${label}: image (left) and reconstruction (right)`;
  }

  window.explorer = { moveTo, hoverPoint, ready: () => ready };
  Promise.all(sprites).then(() => {
    ready = true;
    if (pending) moveTo(pending[0], pending[1]);
  });
  if (select) {
    select.addEventListener("change", () => {
      const canvas = document.getElementById("explorer-decoded");
      const row = canvas.dataset.cell;
      if (row === undefined) return;
      const n = data.grid_columns, cell = Number(row);
      moveTo(data.grid_x[cell % n], data.grid_y[Math.floor(cell / n)]);
    });
  }
})();
