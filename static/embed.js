/* Kairos embed: put a booking page into another site.
 *
 *   <script src="https://kairos.example/static/embed.js"
 *           data-kairos="https://kairos.example/embed/alice/intro" async></script>
 *
 * The script inserts an iframe in its own place and keeps the iframe as tall as the
 * page inside it: the embed page posts {kairos: "height", height} to its parent, and
 * only messages from that iframe's window and Kairos's own origin are believed.
 * Optional: data-kairos-title (the iframe's accessible name).
 */
(function () {
  "use strict";

  var MAX_HEIGHT = 20000;

  function mount(script) {
    if (!script || script.getAttribute("data-kairos-mounted")) return;
    var url;
    try {
      url = new URL(script.getAttribute("data-kairos"), document.baseURI);
    } catch (e) {
      return;
    }
    if (url.protocol !== "https:" && url.protocol !== "http:") return;
    script.setAttribute("data-kairos-mounted", "1");

    var iframe = document.createElement("iframe");
    iframe.src = url.href;
    iframe.title = script.getAttribute("data-kairos-title") || "Book a meeting";
    iframe.setAttribute("loading", "lazy");
    iframe.style.cssText =
      "display:block;width:100%;max-width:100%;min-height:480px;border:0;overflow:hidden;";
    script.parentNode.insertBefore(iframe, script);

    /* A site missing from the host's allowed sites gets an empty frame from the browser
     * (frame-ancestors). The booking page reports its height as soon as it runs, so a
     * frame that loaded and stayed silent was refused: offer the page itself instead,
     * and tell whoever pasted the snippet why. */
    var heard = false;
    var fallback = null;
    iframe.addEventListener("load", function () {
      setTimeout(function () {
        if (heard || fallback) return;
        fallback = document.createElement("p");
        var link = document.createElement("a");
        link.href = url.href.replace("/embed/", "/");
        link.target = "_blank";
        link.rel = "noopener";
        link.textContent = "Open the booking page";
        fallback.appendChild(link);
        iframe.style.display = "none";
        iframe.parentNode.insertBefore(fallback, iframe.nextSibling);
        if (window.console) {
          console.warn("Kairos: the booking page refused to show inside " + location.origin +
            ". Add this address to Settings → Embed → Allowed sites.");
        }
      }, 4000);
    });

    window.addEventListener("message", function (event) {
      if (event.origin !== url.origin || event.source !== iframe.contentWindow) return;
      var data = event.data;
      if (!data || data.kairos !== "height") return;
      heard = true;
      if (fallback) {
        fallback.remove();
        fallback = null;
        iframe.style.display = "block";
      }
      var height = Number(data.height);
      if (!isFinite(height) || height <= 0) return;
      iframe.style.minHeight = "0";
      iframe.style.height = Math.min(Math.ceil(height), MAX_HEIGHT) + "px";
    });
  }

  if (document.currentScript) {
    mount(document.currentScript);
  } else {
    Array.prototype.forEach.call(document.querySelectorAll("script[data-kairos]"), mount);
  }
})();
