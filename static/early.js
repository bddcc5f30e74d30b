/* Runs before the page paints (not deferred): marks it as scripted, so .js-only and
 * .nojs-only parts show the right way from the first frame. */
document.documentElement.classList.add("js");
