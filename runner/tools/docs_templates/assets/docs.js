// Draws the DAG of `runner docs`. dagre (assets/dagre.min.js) computes the layout: ranks, node
// positions, edge routes and the query boxes around their sinks; this file only measures labels
// and draws SVG at the positions dagre returns. The graph is in <script id="dag-data">, inline,
// because a page opened from disk (file://) may not fetch() files next to it.
(function () {
  "use strict";
  var SVG = "http://www.w3.org/2000/svg";
  var PAD_X = 14, LINE = 16, PAD_Y = 8, CLUSTER_LABEL = 20;

  function el(name, attrs, parent) {
    var e = document.createElementNS(SVG, name);
    Object.keys(attrs || {}).forEach(function (k) { e.setAttribute(k, attrs[k]); });
    if (parent) parent.appendChild(e);
    return e;
  }

  function draw() {
    var canvas = document.getElementById("dag-canvas");
    var data = JSON.parse(document.getElementById("dag-data").textContent);
    var svg = el("svg", {id: "dag-svg", role: "img", "aria-label": "DAG of sources, models, sinks and queries"}, canvas);
    var defs = el("defs", {}, svg);
    var marker = el("marker", {id: "arrow", viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7,
                               markerHeight: 7, orient: "auto-start-reverse"}, defs);
    el("path", {d: "M 0 0 L 10 5 L 0 10 z", "class": "arrow-head"}, marker);

    // measure each label in the page's font, so dagre gets the real node sizes
    var probe = el("text", {"class": "node-label"}, svg);
    function width(text, cls) {
      probe.setAttribute("class", cls);
      probe.textContent = text;
      return probe.getComputedTextLength();
    }

    var g = new dagre.graphlib.Graph({compound: true, multigraph: false});
    // dagre keeps (nodesep + edgesep) / 2 between a query box's edge and the sinks inside it and
    // does not size box labels: this nodesep leaves room for the label inside the box's top
    g.setGraph({rankdir: "LR", nodesep: 2 * CLUSTER_LABEL, ranksep: 56, edgesep: 12, marginx: 12, marginy: 12});
    g.setDefaultEdgeLabel(function () { return {}; });
    data.clusters.forEach(function (c) { g.setNode(c.id, {label: c.label}); });
    data.nodes.forEach(function (n) {
      var w = Math.max(width(n.label, "node-label"), n.sub ? width(n.sub, "node-sub") : 0);
      g.setNode(n.id, {node: n, width: Math.ceil(w) + 2 * PAD_X, height: (n.sub ? 2 : 1) * LINE + 2 * PAD_Y});
      if (n.parent) g.setParent(n.id, n.parent);
    });
    data.edges.forEach(function (e) { g.setEdge(e.from, e.to); });
    probe.remove();

    dagre.layout(g);

    var gl = g.graph();
    svg.setAttribute("width", Math.ceil(gl.width));
    svg.setAttribute("height", Math.ceil(gl.height));
    svg.setAttribute("viewBox", "0 0 " + Math.ceil(gl.width) + " " + Math.ceil(gl.height));

    var clusters = el("g", {"class": "clusters"}, svg);
    data.clusters.forEach(function (c) {
      var b = g.node(c.id);
      var box = el("g", {"class": "cluster", "data-query": c.id.replace(/^query:/, "")}, clusters);
      var top = b.y - b.height / 2;
      el("rect", {x: b.x - b.width / 2, y: top, width: b.width, height: b.height, rx: 8}, box);
      var t = el("text", {x: b.x - b.width / 2 + 8, y: top + 15, "class": "cluster-label"}, box);
      t.textContent = c.label;
    });

    var edges = el("g", {"class": "edges"}, svg);
    g.edges().forEach(function (e) {
      var pts = g.edge(e).points;
      var d = "M " + pts.map(function (p) { return p.x + " " + p.y; }).join(" L ");
      el("path", {d: d, "class": "edge", "marker-end": "url(#arrow)", "data-from": e.v, "data-to": e.w}, edges);
    });

    var nodes = el("g", {"class": "nodes"}, svg);
    data.nodes.forEach(function (n) {
      var b = g.node(n.id);
      var a = el("a", {href: n.href, "class": "node " + n.kind + (n.verdict ? " verdict-" + n.verdict : ""),
                       "data-node": n.id}, nodes);
      if (n.model) a.setAttribute("data-model", n.model);
      el("rect", {x: b.x - b.width / 2, y: b.y - b.height / 2, width: b.width, height: b.height, rx: 6}, a);
      var label = el("text", {x: b.x, y: b.y + (n.sub ? -2 : 5), "class": "node-label", "text-anchor": "middle"}, a);
      label.textContent = n.label;
      if (n.sub) {
        var sub = el("text", {x: b.x, y: b.y + 14, "class": "node-sub", "text-anchor": "middle"}, a);
        sub.textContent = n.sub;
      }
      var title = el("title", {}, a);
      title.textContent = n.label + (n.sub ? " (" + n.sub + ")" : "");
    });

    document.getElementById("dagre-version").textContent = dagre.version;
    // tests (and anyone curious) wait for this instead of sleeping
    document.body.setAttribute("data-dag", "drawn");
  }

  try {
    draw();
  } catch (err) {
    document.body.setAttribute("data-dag", "failed");
    var p = document.createElement("p");
    p.className = "missing";
    p.textContent = "The DAG could not be drawn: " + err;
    document.getElementById("dag-canvas").appendChild(p);
    throw err;
  }
})();
