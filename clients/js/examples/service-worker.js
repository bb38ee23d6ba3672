// A service worker that shows Switchboard's Web Push notifications (docs/design.md: Web Push).
// Copy it to your site's root (its scope is the folder it is served from) and register it:
//
//   const registration = await navigator.serviceWorker.register("/service-worker.js");
//   await client.push.subscribe(await navigator.serviceWorker.ready);
//
// `switchboard serve --dev` serves this file at /service-worker.js for the demo page.
//
// Each push carries the JSON `{"id","cursor","tenant","title","body","url","tag"}` (any but
// `id` and `tenant` may be absent). Delivery is at least once: a send the push service
// accepted but whose answer was lost is sent again, so the same `id` can arrive twice.
// `firstDelivery(id)` remembers the last SEEN_LIMIT ids in Cache Storage, because a service
// worker is stopped between events and its variables do not survive; Cache Storage is
// available in every browser that has Web Push, needs no schema (IndexedDB would, for the same
// bounded set of keys), and `keys()` lists entries oldest first, which makes eviction one
// loop. Cache Storage has no atomic "add if absent", so pushes are handled one at a time
// (`queue`). Looking at `registration.getNotifications({tag})` alone would miss a repeat
// that arrives after the user dismissed the first notification. As a second guard, a push
// without a `tag` uses its `id` as the tag: a repeat replaces the notification instead of
// adding one even if the storage failed.
//
// A repeated id shows nothing. With `userVisibleOnly: true` a browser may show its own
// "updated in the background" notice after a push that showed nothing; Chrome tolerates an
// occasional one, and a repeat is rare.
//
// A classic script (no `import`/`export`), so it also runs where module service workers are
// not supported; its functions are globals, which is how the unit test
// (clients/js/test/service-worker.test.mjs) reaches them.
/* eslint-env serviceworker */

/** How many recent push ids are remembered for dedupe. */
var SEEN_LIMIT = 200;
/** The Cache Storage cache holding them (one empty entry per id). */
var SEEN_CACHE = "switchboard-push-seen";
/** Pushes are handled in arrival order, one at a time. */
var queue = Promise.resolve();

/** The cache key of a push id: a URL in this worker's scope (Cache Storage keys are URLs). */
function seenKey(id) {
  return new URL("__switchboard/push-seen/" + encodeURIComponent(id), self.registration.scope).href;
}

/**
 * True the first time `id` is seen among the last SEEN_LIMIT ids, false for a repeat.
 * A storage failure counts as a first delivery: a duplicate beats a lost notification.
 */
async function firstDelivery(id) {
  try {
    var cache = await caches.open(SEEN_CACHE);
    var key = seenKey(id);
    if (await cache.match(key)) return false;
    await cache.put(key, new Response(""));
    var keys = await cache.keys();
    for (var i = 0; i < keys.length - SEEN_LIMIT; i++) await cache.delete(keys[i]);
    return true;
  } catch (error) {
    console.warn("switchboard push: dedupe storage failed", error);
    return true;
  }
}

/** The push's payload, or undefined when it is not Switchboard's JSON. */
function readPayload(data) {
  try {
    var payload = data ? data.json() : undefined;
    return payload && typeof payload === "object" && typeof payload.id === "string" ? payload : undefined;
  } catch (error) {
    return undefined;
  }
}

/** Shows the notification for `payload` unless its id was shown already; true when shown. */
async function handlePush(payload) {
  if (!payload) {
    // Not from Switchboard (or unreadable): a notification is still due (userVisibleOnly).
    await self.registration.showNotification("New notification", {});
    return true;
  }
  if (!(await firstDelivery(payload.id))) return false;
  await self.registration.showNotification(payload.title || "", {
    body: payload.body || "",
    tag: payload.tag || payload.id,
    data: { url: payload.url, id: payload.id, cursor: payload.cursor },
  });
  return true;
}

/** Focuses a window already showing `url` (resolved against the scope), else opens one. */
async function openUrl(url) {
  var target = new URL(url || ".", self.registration.scope).href;
  var windows = await self.clients.matchAll({ type: "window", includeUncontrolled: true });
  for (var i = 0; i < windows.length; i++) {
    if (windows[i].url === target && "focus" in windows[i]) return windows[i].focus();
  }
  return self.clients.openWindow(target);
}

self.addEventListener("push", function (event) {
  var payload = readPayload(event.data);
  var done = queue.then(function () {
    return handlePush(payload);
  });
  queue = done.catch(function () {});
  event.waitUntil(done);
});

self.addEventListener("notificationclick", function (event) {
  event.notification.close();
  var data = event.notification.data || {};
  event.waitUntil(openUrl(data.url));
});
