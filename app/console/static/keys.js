// Keys: no HTTP API manages keys yet; the screen says what it needs and how to do it today.

import { h, needsApi } from "./ui.js";

function init(section) {
  section.replaceChildren(
    h("h2", {}, "API keys"),
    needsApi("creating a key (its secret shown once), listing keys and revoking one: POST /v1/admin/keys, GET /v1/admin/keys, DELETE /v1/admin/keys/{key_id}"),
    h("p", {}, "Until then, on a machine with the service's settings:"),
    h("pre", {}, [
      "vantage keys create --name NAME --scopes recommend   # prints the key once",
      "vantage keys list                                    # never the secrets",
      "vantage keys revoke KEY_ID",
    ].join("\n")),
    h("p", { class: "small" }, "Scopes: recommend (recommendations), events (interactions, profiles), catalog (items), admin (everything)."));
}

export default { id: "keys", title: "Keys", scope: "admin", init };
