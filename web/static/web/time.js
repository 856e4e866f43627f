/* Times in the viewer's time zone.
 *
 * The browser's zone goes into the exchange_tz cookie, so the next page is rendered in it
 * (web/timezones.py); until then every <time datetime> is rewritten here, with UTC kept in
 * its tooltip. A form that reads dates names its zone in a "tz" field: when that zone is not
 * the browser's, the page is loaded once more, so the dates typed are read in the zone the
 * instructor sees, never in UTC by mistake.
 */
(function () {
  "use strict";
  var zone;
  try {
    zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
  } catch (e) {
    return;
  }
  // IANA names ("Europe/Madrid", "Etc/GMT+5") are cookie-safe as they are.
  if (!zone || !/^[A-Za-z0-9_+\/-]+$/.test(zone)) return;
  var secure = location.protocol === "https:" ? "; Secure" : "";
  document.cookie = "exchange_tz=" + zone +
    "; path=/; max-age=31536000; SameSite=Lax" + secure;

  var field = document.querySelector("input[name=tz]");
  var reloaded = "exchange_tz_reloaded:" + zone;
  if (field && field.value !== zone && !sessionStorage.getItem(reloaded)) {
    // Once per zone: a zone the server does not know must not reload without end.
    sessionStorage.setItem(reloaded, "1");
    location.reload();
    return;
  }

  var format = new Intl.DateTimeFormat("en-CA", {
    timeZone: zone, year: "numeric", month: "2-digit", day: "2-digit",
    hour: "2-digit", minute: "2-digit", hourCycle: "h23", timeZoneName: "short"
  });
  var times = document.querySelectorAll("time[datetime]");
  for (var i = 0; i < times.length; i++) {
    var el = times[i];
    if (el.getAttribute("data-zone") === zone) continue;
    var when = new Date(el.getAttribute("datetime"));
    if (isNaN(when.getTime())) continue;
    var parts = {};
    format.formatToParts(when).forEach(function (p) { parts[p.type] = p.value; });
    el.textContent = parts.year + "-" + parts.month + "-" + parts.day + " " +
      parts.hour + ":" + parts.minute + " " + (parts.timeZoneName || zone);
    el.setAttribute("data-zone", zone);
  }
})();
