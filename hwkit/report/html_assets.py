"""The style sheet and the script inlined in every HTML report (``hwkit.report.html``): the page
must work from a file, offline, so nothing is linked.

The script only sorts tables: a click (or Enter/Space) on a column's header sorts the rows by the
cells' ``data-sort`` values (numbers as numbers, text as text, empty cells last), a second click
reverses; ``aria-sort`` tells screen readers and the arrow.
"""

CSS = """
*{box-sizing:border-box}
body{margin:0;font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1d1d1f;background:#fafafa}
main{max-width:1280px;margin:0 auto;padding:12px 16px 32px}
h1{font-size:1.4rem;margin:.4em 0 .2em;overflow-wrap:anywhere}
h2{font-size:1.1rem;margin:1.6em 0 .5em;border-bottom:1px solid #ddd;padding-bottom:.2em}
p,li{overflow-wrap:anywhere}
.meta{color:#555;margin:.2em 0}
code{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:.92em}
.table-wrap{overflow-x:auto;-webkit-overflow-scrolling:touch;border:1px solid #ddd;border-radius:6px;background:#fff}
table{border-collapse:collapse;min-width:100%;font-variant-numeric:tabular-nums}
th,td{padding:6px 10px;border-bottom:1px solid #eee;white-space:nowrap;text-align:right;vertical-align:top}
th.text,td.text{text-align:left}
tbody tr:hover{background:#f2f6fc}
thead th{background:#f0f2f5;position:sticky;top:0}
th button{font:inherit;font-weight:600;color:inherit;background:none;border:0;padding:0;cursor:pointer}
th[aria-sort=ascending] button::after{content:" \\25B2"}
th[aria-sort=descending] button::after{content:" \\25BC"}
td.bad{color:#b00020;font-weight:600}
td.good{color:#1b7f3b}
.errors li{color:#b00020}
.figures{display:grid;align-items:start;grid-template-columns:repeat(auto-fit,minmax(min(100%,540px),1fr));gap:16px}
figure{margin:0;padding:8px;border:1px solid #ddd;border-radius:6px;background:#fff;min-width:0}
figure svg{display:block;width:100%;height:auto}
figcaption{color:#555;font-size:.9em;margin-top:4px}
dl.facts{display:grid;grid-template-columns:max-content minmax(0,1fr);gap:4px 16px;margin:0}
dl.facts dt{font-weight:600;color:#333}
dl.facts dd{margin:0;overflow-wrap:anywhere}
.busy{background:#fff4d6;border:1px solid #e8c26b;border-radius:6px;padding:8px 12px}
footer{color:#777;font-size:.85em;margin-top:2em}
@media (max-width:640px){
  main{padding:8px 10px 24px}
  body{font-size:14px}
  dl.facts{grid-template-columns:1fr}
  dl.facts dd{margin-bottom:6px}
}
"""

JS = """
(function () {
  function value(row, index) { return row.cells[index] ? row.cells[index].getAttribute('data-sort') : ''; }
  function sortBy(table, header, index) {
    var ascending = header.getAttribute('aria-sort') !== 'ascending';
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (cell) { cell.removeAttribute('aria-sort'); });
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = value(a, index), y = value(b, index);
      if (x === y) { return 0; }
      if (x === '' || x === null) { return 1; }
      if (y === '' || y === null) { return -1; }
      var nx = Number(x), ny = Number(y);
      var order = (!isNaN(nx) && !isNaN(ny)) ? nx - ny : x.localeCompare(y);
      return ascending ? order : -order;
    });
    rows.forEach(function (row) { body.appendChild(row); });
    header.setAttribute('aria-sort', ascending ? 'ascending' : 'descending');
  }
  Array.prototype.forEach.call(document.querySelectorAll('table.sortable'), function (table) {
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (header, index) {
      var button = header.querySelector('button');
      if (button) { button.addEventListener('click', function () { sortBy(table, header, index); }); }
    });
  });
})();
"""
