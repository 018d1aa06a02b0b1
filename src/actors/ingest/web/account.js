// The account panel (the password; API keys, made, listed and revoked) and,
// for admins, the users page (disable, enable, remove). Loaded before
// app.js, whose helpers ($, api, errorText) it uses once app.js calls
// setUpAccount().
"use strict";

// The logged-in user's id: their own row on the users page has no buttons
// (an admin cannot disable or remove themselves).
let myId = null;

// Which page shows: the jobs, the account, or the users.
function showPage(name) {
  for (const page of ["app", "account", "users"]) $(page).hidden = page !== name;
}

// The buttons a logged-in user sees: Account always, Users for admins.
async function loadAccount() {
  $("account-open").hidden = false;
  const response = await api("/v1/me");
  if (!response.ok) return;
  const me = await response.json();
  myId = me.id;
  $("account-who").textContent = `${me.email} · ${me.role}`;
  $("users-open").hidden = me.role !== "admin";
  $("notify").value = me.notify;
}

function hideAccount() {
  $("account-open").hidden = true;
  $("users-open").hidden = true;
  $("account").hidden = true;
  $("users").hidden = true;
}

// One row of a list: what it is, and its buttons.
function row(what, buttons) {
  const item = document.createElement("li");
  const text = document.createElement("span");
  text.className = "what";
  text.textContent = what;
  const actions = document.createElement("span");
  actions.className = "actions";
  for (const [label, action] of buttons) {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "secondary";
    button.textContent = label;
    button.addEventListener("click", action);
    actions.append(button);
  }
  item.append(text, actions);
  return item;
}

async function loadKeys() {
  const response = await api("/v1/api-keys");
  if (!response.ok) return;
  const keys = await response.json();
  $("keys").replaceChildren(...keys.map((key) => {
    const used = key.last_used_at ? `used ${key.last_used_at.slice(0, 16).replace("T", " ")}` : "never used";
    const what = `${key.name ?? key.id} · ${key.scopes.join(", ")} · ${used}`;
    return row(what, [["Revoke", async () => {
      const revoked = await api(`/v1/api-keys/${key.id}`, { method: "DELETE" });
      if (!revoked.ok) $("key-error").textContent = await errorText(revoked);
      $("key-made").hidden = true;
      loadKeys();
    }]]);
  }));
}

async function loadHooks() {
  const response = await api("/v1/webhooks");
  if (!response.ok) return;
  const hooks = await response.json();
  $("hooks").replaceChildren(...hooks.map((hook) => {
    const what = `${hook.url} · ${hook.events.join(", ")}${hook.disabled ? " · off" : ""}`;
    return row(what, [["Delete", async () => {
      await api(`/v1/webhooks/${hook.id}`, { method: "DELETE" });
      $("hook-made").hidden = true;
      loadHooks();
    }]]);
  }));
}

async function loadFeed() {
  const response = await api("/v1/feed");
  const on = response.ok;
  $("feed-state").textContent = on
    ? `On since ${(await response.json()).created_at.slice(0, 10)}.`
    : "Off.";
  $("feed-off").hidden = !on;
}

async function loadUsers() {
  $("users-error").textContent = "";
  const response = await api("/v1/users?limit=500");
  if (!response.ok) {
    $("users-error").textContent = await errorText(response);
    return;
  }
  const users = await response.json();
  const change = (user, body) => async () => {
    const changed = await api(`/v1/users/${user.id}`, {
      method: "PATCH",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
    if (!changed.ok) $("users-error").textContent = await errorText(changed);
    loadUsers();
  };
  const remove = (user) => async () => {
    if (!confirm(`Remove ${user.email} and everything they converted?`)) return;
    const removed = await api(`/v1/users/${user.id}`, { method: "DELETE" });
    if (!removed.ok) $("users-error").textContent = await errorText(removed);
    loadUsers();
  };
  $("user-list").replaceChildren(...users.map((user) => {
    const what = `${user.email} · ${user.role}${user.disabled ? " · disabled" : ""}`;
    const toggle = user.disabled
      ? ["Enable", change(user, { disabled: false })]
      : ["Disable", change(user, { disabled: true })];
    const item = row(what, user.id === myId ? [] : [toggle, ["Remove", remove(user)]]);
    item.dataset.email = user.email;
    return item;
  }));
}

function setUpAccount() {
  $("account-open").addEventListener("click", () => {
    showPage("account");
    loadKeys();
    loadHooks();
    loadFeed();
  });
  $("users-open").addEventListener("click", () => {
    showPage("users");
    loadUsers();
  });
  for (const close of ["account-close", "users-close"]) {
    $(close).addEventListener("click", () => showPage("app"));
  }

  $("notify").addEventListener("change", async () => {
    const response = await api("/v1/me/notifications", {
      method: "PUT",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ notify: $("notify").value }),
    });
    $("notify-result").textContent = response.ok ? "Saved." : await errorText(response);
  });

  $("password-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const response = await api("/v1/me/password", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({
        current_password: $("current-password").value,
        new_password: $("new-password").value,
      }),
    });
    const result = $("password-result");
    result.className = response.ok ? "" : "error";
    result.textContent = response.ok
      ? "Changed. Your other sessions have ended."
      : await errorText(response);
    if (response.ok) event.target.reset();
  });

  $("hook-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    $("hook-error").textContent = "";
    const events = [...document.querySelectorAll("#hook-form .scopes input:checked")].map((box) => box.value);
    const response = await api("/v1/webhooks", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ url: $("hook-url").value.trim(), events }),
    });
    if (!response.ok) {
      $("hook-error").textContent = await errorText(response);
      return;
    }
    $("hook-secret").textContent = (await response.json()).secret;
    $("hook-made").hidden = false;
    $("hook-url").value = "";
    loadHooks();
  });

  $("feed-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const response = await api("/v1/feed", { method: "POST" });
    if (!response.ok) {
      $("feed-state").textContent = await errorText(response);
      return;
    }
    $("feed-url").textContent = (await response.json()).url;
    $("feed-made").hidden = false;
    loadFeed();
  });
  $("feed-off").addEventListener("click", async () => {
    await api("/v1/feed", { method: "DELETE" });
    $("feed-made").hidden = true;
    loadFeed();
  });

  $("key-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    $("key-error").textContent = "";
    const scopes = [...document.querySelectorAll("#key-form .scopes input:checked")].map((box) => box.value);
    const name = $("key-name").value.trim();
    const response = await api("/v1/api-keys", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(name ? { scopes, name } : { scopes }),
    });
    if (!response.ok) {
      $("key-error").textContent = await errorText(response);
      return;
    }
    const made = await response.json();
    $("key-secret").textContent = made.key;
    $("key-made").hidden = false;
    $("key-name").value = "";
    loadKeys();
  });
}
