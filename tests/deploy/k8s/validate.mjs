// validate.mjs: offline checks of deploy/kubernetes/ (tests/deploy/kubernetes_test.sh runs it).
//
//   node validate.mjs [--root DIR]... [--out DIR] [--kubectl PATH | --no-kubectl]
//
// For each --root (a source tree; default the current directory) it
//  1. renders the kustomizations users apply, with a small renderer of the kustomize subset
//     these files use (resources, components, configMapGenerator with its content hash,
//     JSON6902 patches, namespace; any other key is an error): deploy/kubernetes,
//     deploy/kubernetes/overlays/sriov, and the base with every component ("all");
//     where `kubectl kustomize` is on PATH, renders them with it too and requires the same
//     objects (so the renderer is checked against the real kustomize);
//  2. validates every rendered object, and base/curve-secret.example.yaml, against the
//     Kubernetes 1.33 API schemas of the npm package kubernetes-models (4.5.1) and the
//     prometheus-operator CRD schemas of @kubernetes-models/prometheus-operator: types,
//     required fields, enums and formats by their JSON Schema validators (ajv), and in
//     strict mode: a field that the API's type does not have is an error (the packages'
//     TypeScript declarations of each type, read with the TypeScript compiler, give the
//     fields; ajv's schemas there allow unknown fields);
//  3. checks the invariants of our own that the API cannot know (invariants() below):
//     Guaranteed QoS with whole CPUs, the drain fitting in the grace period, every port
//     agreeing with the configuration, the CURVE key files' modes, the SR-IOV pieces, and
//     the job label the Prometheus Operator gives the ServiceMonitor's targets being the one
//     every alert rule of deploy/prometheus/mediabatch-rules.yml selects.
// Prints "<root>: ok" or "<root>: FAIL" with one line per problem; exits 1 if any root
// failed. --out DIR writes each rendering (DIR/<name>.yaml) and its ConfigMap's files
// (DIR/<name>/config/) for the shell test's `mediabatchd --check`.

import { execFileSync } from "node:child_process";
import crypto from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import jsonpatch from "fast-json-patch";
import ts from "typescript";
import YAML from "yaml";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const K8S_VERSION = "1.33"; // kubernetes-models 4.5.1
const DIR = "deploy/kubernetes";

class Problem extends Error {}
const fail = (msg) => {
	throw new Problem(msg);
};

// --- YAML ------------------------------------------------------------------------------

// Every file read, to find manifests that no rendering uses (and so nothing checks).
const filesRead = new Set();
const readFile = (file) => {
	filesRead.add(path.resolve(file));
	return fs.readFileSync(file, "utf8");
};

// YAML 1.1, as kubectl and kustomize read it: 0400 is octal (256), as Kubernetes means it.
function parseDocs(file, text = readFile(file)) {
	const docs = YAML.parseAllDocuments(text, { version: "1.1", uniqueKeys: true });
	const out = [];
	for (const d of docs) {
		if (d.errors.length) fail(`${file}: ${d.errors[0].message}`);
		const v = d.toJS({ maxAliasCount: -1 });
		if (v !== null && v !== undefined) out.push(v);
	}
	return out;
}

const clone = (v) => JSON.parse(JSON.stringify(v));

// --- the kustomize subset ----------------------------------------------------------------

const KUST_KEYS = {
	Kustomization: ["apiVersion", "kind", "namespace", "resources", "components", "configMapGenerator", "patches"],
	Component: ["apiVersion", "kind", "resources", "configMapGenerator", "patches"],
};
const KUST_API = {
	Kustomization: "kustomize.config.k8s.io/v1beta1",
	Component: "kustomize.config.k8s.io/v1alpha1",
};
const CLUSTER_SCOPED = new Set(["Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition", "PriorityClass", "StorageClass", "RuntimeClass"]);
const needsHash = new WeakSet();

function loadKust(dir, kind) {
	const file = path.join(dir, "kustomization.yaml");
	if (!fs.existsSync(file)) fail(`${dir}: no kustomization.yaml`);
	const docs = parseDocs(file);
	if (docs.length !== 1) fail(`${file}: one document expected`);
	const k = docs[0];
	if (k.kind !== kind) fail(`${file}: kind ${k.kind}, expected ${kind}`);
	if (k.apiVersion !== KUST_API[kind]) fail(`${file}: apiVersion ${k.apiVersion}, expected ${KUST_API[kind]}`);
	for (const key of Object.keys(k))
		if (!KUST_KEYS[kind].includes(key))
			fail(`${file}: '${key}' is not a field this check renders (${KUST_KEYS[kind].join(", ")})`);
	return { k, file };
}

function relInside(dir, p, file) {
	if (path.isAbsolute(p)) fail(`${file}: '${p}': kustomize refuses absolute paths`);
	return path.resolve(dir, p);
}

// Objects of a kustomization directory, not yet hashed (finish() does that).
function build(dir) {
	const { k, file } = loadKust(dir, "Kustomization");
	let objs = [];
	for (const r of k.resources ?? []) objs.push(...resource(dir, r, file));
	for (const c of k.components ?? []) objs = component(relInside(dir, c, file), objs);
	for (const g of k.configMapGenerator ?? []) objs = generate(dir, g, file, objs);
	for (const p of k.patches ?? []) patch(dir, p, file, objs);
	if (k.namespace) for (const o of objs) if (!CLUSTER_SCOPED.has(o.kind)) (o.metadata ??= {}).namespace = k.namespace;
	return objs;
}

function resource(dir, r, file) {
	const p = relInside(dir, r, file);
	if (!fs.existsSync(p)) fail(`${file}: resource '${r}' does not exist`);
	if (fs.statSync(p).isDirectory()) return build(p);
	if (path.relative(dir, p).startsWith("..")) fail(`${file}: file '${r}' is outside the kustomization's directory`);
	return parseDocs(p);
}

function component(dir, objs) {
	const { k, file } = loadKust(dir, "Component");
	for (const r of k.resources ?? []) objs.push(...resource(dir, r, file));
	for (const g of k.configMapGenerator ?? []) objs = generate(dir, g, file, objs);
	for (const p of k.patches ?? []) patch(dir, p, file, objs);
	return objs;
}

function generate(dir, g, file, objs) {
	for (const key of Object.keys(g))
		if (!["name", "behavior", "files"].includes(key)) fail(`${file}: configMapGenerator '${key}' is not a field this check renders`);
	const data = {};
	for (const f of g.files ?? []) {
		const [key, rel] = f.includes("=") ? f.split("=", 2) : [path.basename(f), f];
		const p = relInside(dir, rel, file);
		if (path.relative(dir, p).startsWith("..")) fail(`${file}: file '${rel}' is outside the kustomization's directory`);
		if (!fs.existsSync(p)) fail(`${file}: configMapGenerator file '${rel}' does not exist`);
		if (key in data) fail(`${file}: configMapGenerator ${g.name}: key '${key}' twice`);
		data[key] = readFile(p);
	}
	const behavior = g.behavior ?? "create";
	const i = objs.findIndex((o) => o.kind === "ConfigMap" && o.metadata?.name === g.name);
	if (behavior === "create") {
		if (i >= 0) fail(`${file}: configMapGenerator ${g.name} exists already (behavior: merge or replace)`);
		const cm = { apiVersion: "v1", kind: "ConfigMap", metadata: { name: g.name }, data };
		needsHash.add(cm);
		objs.push(cm);
	} else if (behavior === "merge" || behavior === "replace") {
		if (i < 0) fail(`${file}: configMapGenerator ${g.name}: behavior ${behavior}, but there is no such ConfigMap to ${behavior}`);
		objs[i].data = behavior === "merge" ? { ...objs[i].data, ...data } : data;
	} else fail(`${file}: configMapGenerator ${g.name}: behavior '${behavior}'`);
	return objs;
}

function patch(dir, p, file, objs) {
	for (const key of Object.keys(p)) if (!["path", "target"].includes(key)) fail(`${file}: patches '${key}' is not a field this check renders`);
	const pfile = relInside(dir, p.path, file);
	const ops = parseDocs(pfile);
	if (ops.length !== 1 || !Array.isArray(ops[0])) fail(`${pfile}: a JSON6902 patch (a list of operations) expected`);
	const t = p.target ?? fail(`${file}: patch ${p.path} has no target`);
	for (const key of Object.keys(t)) if (!["group", "version", "kind", "name"].includes(key)) fail(`${file}: patch target '${key}' is not a field this check renders`);
	const hits = objs.filter((o) => {
		const [g, v] = o.apiVersion.includes("/") ? o.apiVersion.split("/") : ["", o.apiVersion];
		return (t.group === undefined || t.group === g) && (t.version === undefined || t.version === v) && (t.kind === undefined || t.kind === o.kind) && (t.name === undefined || t.name === o.metadata?.name);
	});
	if (hits.length === 0) fail(`${file}: patch ${p.path}: no object matches its target`);
	for (const o of hits) {
		try {
			jsonpatch.applyPatch(o, clone(ops[0]), true, true);
		} catch (e) {
			fail(`${pfile}: on ${o.kind}/${o.metadata.name}: ${e.name}: ${String(e.message).split("\n")[0]}`);
		}
	}
}

// Go's encoding/json of a string (what kustomize hashes): HTML characters escaped.
const goString = (s) => JSON.stringify(s).replace(/[<>&\u2028\u2029]/g, (c) => "\\u" + c.charCodeAt(0).toString(16).padStart(4, "0"));
const goMap = (m) => "{" + Object.keys(m).sort().map((k) => goString(k) + ":" + (typeof m[k] === "string" ? goString(m[k]) : goMap(m[k]))).join(",") + "}";

// kustomize's name suffix: sha256 of {"data":...,"kind":"ConfigMap","name":""}, its first
// ten hex digits with 0 1 3 a e made letters. The name is empty: kustomize 5 looks it up
// as one field called "metadata/name" (api/hasher), finds none, and hashes "".
function kustomizeHash(cm) {
	const hex = crypto.createHash("sha256").update(goMap({ data: cm.data ?? {}, kind: "ConfigMap", name: "" })).digest("hex");
	return [...hex.slice(0, 10)].map((c) => ({ 0: "g", 1: "h", 3: "k", a: "m", e: "t" })[c] ?? c).join("");
}

function podSpecs(o) {
	if (["DaemonSet", "Deployment", "StatefulSet", "ReplicaSet", "Job"].includes(o.kind)) return [o.spec?.template?.spec].filter(Boolean);
	if (o.kind === "Pod") return [o.spec].filter(Boolean);
	return [];
}

function finish(objs) {
	const renamed = new Map();
	for (const o of objs)
		if (needsHash.has(o)) {
			const n = `${o.metadata.name}-${kustomizeHash(o)}`;
			renamed.set(o.metadata.name, n);
			o.metadata.name = n;
		}
	for (const o of objs)
		for (const spec of podSpecs(o)) {
			for (const v of spec.volumes ?? []) {
				if (v.configMap && renamed.has(v.configMap.name)) v.configMap.name = renamed.get(v.configMap.name);
				for (const s of v.projected?.sources ?? []) if (s.configMap && renamed.has(s.configMap.name)) s.configMap.name = renamed.get(s.configMap.name);
			}
			for (const c of [...(spec.containers ?? []), ...(spec.initContainers ?? [])]) {
				for (const e of c.envFrom ?? []) if (e.configMapRef && renamed.has(e.configMapRef.name)) e.configMapRef.name = renamed.get(e.configMapRef.name);
				for (const e of c.env ?? []) {
					const r = e.valueFrom?.configMapKeyRef;
					if (r && renamed.has(r.name)) r.name = renamed.get(r.name);
				}
			}
		}
	const seen = new Set();
	for (const o of objs) {
		const id = objId(o);
		if (seen.has(id)) fail(`two objects ${id}`);
		seen.add(id);
	}
	return objs.map(clone);
}

const objId = (o) => `${o.kind}/${o.metadata?.namespace ?? ""}/${o.metadata?.name}`;

// The renderings: name, the directory kubectl renders, and how to build it here.
function renderings(root) {
	const d = path.join(root, DIR);
	return [
		{ name: "default", dir: d, build: () => finish(build(d)) },
		{ name: "sriov", dir: path.join(d, "overlays/sriov"), build: () => finish(build(path.join(d, "overlays/sriov"))) },
		{
			name: "all",
			// base + every component, as a user's overlay would compose them
			kustomization: (tmp) => ({
				apiVersion: KUST_API.Kustomization,
				kind: "Kustomization",
				namespace: "mediabatch",
				resources: [path.relative(tmp, path.join(d, "base"))],
				components: fs.readdirSync(path.join(d, "components")).sort().map((c) => path.relative(tmp, path.join(d, "components", c))),
			}),
		},
	];
}

function renderAll(root, kubectl) {
	const out = [];
	for (const r of renderings(root)) {
		let dir = r.dir;
		let tmp;
		if (r.kustomization) {
			tmp = fs.mkdtempSync(path.join(os.tmpdir(), "mb-k8s-"));
			fs.writeFileSync(path.join(tmp, "kustomization.yaml"), YAML.stringify(r.kustomization(tmp)));
			dir = tmp;
		}
		try {
			const objs = finish(build(dir));
			if (kubectl) compareWithKubectl(r.name, dir, objs, kubectl);
			out.push({ name: r.name, objs });
		} catch (e) {
			if (e instanceof Problem) e.message = `${r.name}: ${e.message}`;
			throw e;
		} finally {
			if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
		}
	}
	return out;
}

function compareWithKubectl(name, dir, objs, kubectl) {
	let text;
	try {
		text = execFileSync(kubectl, ["kustomize", dir], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
	} catch (e) {
		fail(`kubectl kustomize ${dir}: ${(e.stderr || e.message).trim().split("\n").slice(-1)[0]}`);
	}
	const theirs = new Map(parseDocs(`kubectl kustomize ${dir}`, text).map((o) => [objId(o), o]));
	const ours = new Map(objs.map((o) => [objId(o), o]));
	for (const id of ours.keys()) if (!theirs.has(id)) fail(`kubectl kustomize does not make ${id} (made: ${[...theirs.keys()].join(", ")})`);
	for (const id of theirs.keys()) if (!ours.has(id)) fail(`kubectl kustomize makes ${id}, which this renderer does not`);
	for (const [id, o] of ours) {
		const a = JSON.stringify(sortKeys(o));
		const b = JSON.stringify(sortKeys(theirs.get(id)));
		if (a !== b) fail(`${id} differs from kubectl kustomize's: ${firstDiff(o, theirs.get(id), "")}`);
	}
}

const sortKeys = (v) => (Array.isArray(v) ? v.map(sortKeys) : v && typeof v === "object" ? Object.fromEntries(Object.keys(v).sort().map((k) => [k, sortKeys(v[k])])) : v);

function firstDiff(a, b, p) {
	if (typeof a !== typeof b || Array.isArray(a) !== Array.isArray(b) || a === null || b === null || typeof a !== "object")
		return JSON.stringify(a) === JSON.stringify(b) ? null : `${p || "."}: ${JSON.stringify(a)?.slice(0, 80)} here, ${JSON.stringify(b)?.slice(0, 80)} there`;
	for (const k of new Set([...Object.keys(a), ...Object.keys(b)])) {
		const d = firstDiff(a[k], b[k], `${p}.${k}`);
		if (d) return d;
	}
	return null;
}

// --- the API schemas -----------------------------------------------------------------------

// apiVersion + kind -> the module with its model class (ajv validator) and I<Kind> interface.
function modelModule(o) {
	if (typeof o?.apiVersion !== "string" || typeof o?.kind !== "string" || !/^[A-Z][A-Za-z0-9]*$/.test(o.kind)) return null;
	if (o.apiVersion === "monitoring.coreos.com/v1") return `@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/${o.kind}`;
	if (!/^([a-z0-9.-]+\/)?v[0-9]+((alpha|beta)[0-9]+)?$/.test(o.apiVersion)) return null;
	return `kubernetes-models/${o.apiVersion}/${o.kind}`;
}

const models = new Map();
async function ajvValidate(o) {
	const mod = modelModule(o);
	if (!mod) return [`${o.apiVersion ?? "?"} ${o.kind ?? "?"}: not an API this check knows`];
	if (!models.has(mod)) {
		try {
			models.set(mod, (await import(mod))[o.kind]);
		} catch {
			models.set(mod, null);
		}
	}
	const Model = models.get(mod);
	if (!Model) return [`${o.apiVersion} ${o.kind}: no such kind in the Kubernetes ${K8S_VERSION} API (or the prometheus-operator CRDs)`];
	try {
		new Model(clone(o)).validate();
		return [];
	} catch (e) {
		return [`schema: ${e.message}`];
	}
}

// Strict mode: every field of every object must be a property of the API type that the
// packages declare for it (TypeScript declarations, generated from the same OpenAPI
// schemas); maps (labels, resources, data) are index signatures and take any key.
class FieldChecker {
	constructor(objects) {
		this.kinds = new Map();
		const lines = [];
		for (const o of objects) {
			const mod = modelModule(o);
			if (!mod || this.kinds.has(mod)) continue;
			const n = this.kinds.size;
			this.kinds.set(mod, n);
			lines.push(`import type { I${o.kind} as T${n} } from "${mod}";`, `export declare const v${n}: T${n};`);
		}
		const file = path.join(HERE, "__fields.mts");
		const opts = { strict: true, noEmit: true, skipLibCheck: true, types: [], module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext, target: ts.ScriptTarget.ES2022 };
		const host = ts.createCompilerHost(opts);
		const text = lines.join("\n") + "\n";
		const getSourceFile = host.getSourceFile.bind(host);
		const fileExists = host.fileExists.bind(host);
		host.getSourceFile = (f, l, ...r) => (path.resolve(f) === file ? ts.createSourceFile(f, text, l, true) : getSourceFile(f, l, ...r));
		host.fileExists = (f) => path.resolve(f) === file || fileExists(f);
		this.program = ts.createProgram([file], opts, host);
		const problems = ts.getPreEmitDiagnostics(this.program).map((d) => ts.flattenDiagnosticMessageText(d.messageText, " "));
		if (problems.length) throw new Error(`the API's type declarations do not load: ${problems.join("; ")}`);
		this.checker = this.program.getTypeChecker();
		this.types = new Map();
		const sf = this.program.getSourceFile(file);
		for (const st of sf.statements)
			if (ts.isVariableStatement(st))
				for (const d of st.declarationList.declarations) this.types.set(Number(d.name.text.slice(1)), this.checker.getTypeAtLocation(d.name));
	}

	check(o) {
		const mod = modelModule(o);
		if (!mod || !this.kinds.has(mod)) return [];
		const errs = [];
		this.walk(this.types.get(this.kinds.get(mod)), o, "", errs);
		return errs;
	}

	walk(type, value, p, errs) {
		const c = this.checker;
		if (value === null || typeof value !== "object") return; // scalars: ajv's types
		type = c.getNonNullableType(type);
		if (type.flags & (ts.TypeFlags.Any | ts.TypeFlags.Unknown)) return;
		if (type.isUnion()) {
			const objs = type.types.filter((t) => t.flags & ts.TypeFlags.Object);
			if (objs.length !== 1) return; // string | number and the like: ajv's business
			type = objs[0];
		}
		if (Array.isArray(value)) {
			const el = c.getIndexTypeOfType(type, ts.IndexKind.Number);
			if (el) value.forEach((v, i) => this.walk(el, v, `${p}[${i}]`, errs));
			return;
		}
		for (const [k, v] of Object.entries(value)) {
			const prop = c.getPropertyOfType(type, k);
			if (prop) {
				const decl = prop.valueDeclaration ?? prop.declarations?.[0];
				this.walk(decl ? c.getTypeOfSymbolAtLocation(prop, decl) : c.getTypeOfSymbol(prop), v, `${p}.${k}`, errs);
				continue;
			}
			const idx = c.getIndexTypeOfType(type, ts.IndexKind.String);
			if (idx) {
				this.walk(idx, v, `${p}[${JSON.stringify(k)}]`, errs);
				continue;
			}
			const t = c.typeToString(type);
			errs.push(`${(p + "." + k).slice(1)}: unknown field (${t.length <= 60 ? t : "its type"} has no '${k}'; strict mode)`);
		}
	}
}

// One TypeScript program for all roots that need the same API types (the self-test's many).
const fieldCheckers = new Map();
function fieldChecker(objects) {
	const key = [...new Set(objects.map(modelModule).filter(Boolean))].sort().join(" ");
	if (!fieldCheckers.has(key)) fieldCheckers.set(key, new FieldChecker(objects));
	return fieldCheckers.get(key);
}

// --- our invariants ----------------------------------------------------------------------------

// A Kubernetes quantity as a number (CPU in cores, memory in bytes).
function quantity(q, what) {
	const m = /^([0-9]+(?:\.[0-9]+)?)(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$/.exec(String(q));
	if (!m) fail(`${what}: '${q}' is not a quantity`);
	const mul = { m: 1e-3, k: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15, E: 1e18, Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, Pi: 2 ** 50, Ei: 2 ** 60 };
	return Number(m[1]) * (m[2] ? mul[m[2]] : 1);
}

// "tcp://HOST:PORT" or "HOST:PORT" -> {host, port}
function endpoint(s, key) {
	const m = /^(?:tcp:\/\/)?(\*|[0-9.]+|localhost|\[[0-9a-fA-F:]+\]):([0-9]+)$/.exec(String(s));
	if (!m) fail(`mediabatch.yaml ${key}: '${s}' is not tcp://HOST:PORT or HOST:PORT`);
	return { host: m[1], port: Number(m[2]) };
}

// The alert rules (deploy/prometheus/mediabatch-rules.yml): the job every expression selects.
const RULES = "deploy/prometheus/mediabatch-rules.yml";
function rulesJobs(root) {
	const file = path.join(root, RULES);
	if (!fs.existsSync(file)) fail(`${RULES}: missing (the ServiceMonitor's job is checked against it)`);
	const jobs = new Set();
	for (const doc of parseDocs(file, fs.readFileSync(file, "utf8")))
		for (const g of doc?.groups ?? [])
			for (const r of g.rules ?? []) for (const m of String(r.expr ?? "").matchAll(/\bjob\s*(=~|!=|!~|=)\s*"([^"]*)"/g)) jobs.add(m[1] === "=" ? m[2] : `${m[1]}"${m[2]}"`);
	return jobs;
}

// The job label the Prometheus Operator gives the targets of a ServiceMonitor endpoint: the
// Service's name, or the value of the Service's label spec.jobLabel names, then the
// endpoint's relabelings (only those this check can evaluate: replace with a literal
// replacement and no source labels). Returns { job } or { error }.
function serviceMonitorJob(sm, svc, e) {
	let job = svc.metadata.name;
	let how = "the Service's name, the operator's default";
	const jl = sm.spec.jobLabel;
	if (jl && svc.metadata.labels?.[jl]) {
		job = svc.metadata.labels[jl];
		how = `the Service's label ${jl}, spec.jobLabel`;
	}
	for (const r of e.relabelings ?? []) {
		const action = (r.action ?? "replace").toLowerCase();
		const touches = r.targetLabel === "job" || (["labeldrop", "labelkeep", "labelmap"].includes(action) && new RegExp(`^(?:${r.regex ?? "(.*)"})$`).test("job"));
		if (!touches) continue;
		if (action !== "replace" || (r.sourceLabels ?? []).length || r.replacement === undefined || /\$/.test(r.replacement))
			return { error: `a relabeling of job this check cannot evaluate (${JSON.stringify(r)}): set it with action replace and a literal replacement` };
		job = r.replacement;
		how = "the endpoint's relabeling";
	}
	for (const r of e.metricRelabelings ?? [])
		if (r.targetLabel === "job") return { error: "a metricRelabeling of job: up{} keeps the target's job, the samples would not; relabel the target (relabelings) instead" };
	return { job, how };
}

function invariants(name, objs, exampleSecret, jobs) {
	const errs = [];
	const check = (ok, msg) => {
		if (!ok) errs.push(msg);
	};
	const find = (kind, pred = () => true) => objs.filter((o) => o.kind === kind && pred(o));
	const [ds, ...moreDs] = find("DaemonSet", (o) => o.metadata.name === "mediabatchd");
	if (!ds || moreDs.length) return ["one DaemonSet mediabatchd expected"];
	const spec = ds.spec.template.spec;
	const tmplLabels = ds.spec.template.metadata?.labels ?? {};
	const main = (spec.containers ?? []).find((c) => c.name === "mediabatchd");
	if (!main) return ["DaemonSet mediabatchd: no container mediabatchd"];
	const inits = spec.initContainers ?? [];
	const volume = (n) => (spec.volumes ?? []).find((v) => v.name === n);
	const mountOf = (c, p) => (c.volumeMounts ?? []).filter((m) => p === m.mountPath || p.startsWith(m.mountPath.replace(/\/$/, "") + "/")).sort((a, b) => b.mountPath.length - a.mountPath.length)[0];

	// one namespace, and its Namespace object
	const nss = new Set(objs.filter((o) => !CLUSTER_SCOPED.has(o.kind)).map((o) => o.metadata?.namespace));
	check(nss.size === 1 && !nss.has(undefined), `every object in one namespace (found: ${[...nss].join(", ")})`);
	check(find("Namespace", (o) => nss.has(o.metadata.name)).length === 1, `a Namespace object for ${[...nss].join(", ")}`);
	check(Object.entries(ds.spec.selector?.matchLabels ?? {}).every(([k, v]) => tmplLabels[k] === v), "DaemonSet: selector matches the pod template's labels");

	// the configuration: the ConfigMap mounted as "config"
	const cfgVol = (spec.volumes ?? []).find((v) => v.configMap);
	const cm = cfgVol && find("ConfigMap", (o) => o.metadata.name === cfgVol.configMap.name)[0];
	if (!cm) return [...errs, `DaemonSet: no ConfigMap volume whose ConfigMap exists (${cfgVol?.configMap?.name})`];
	if (!cm.data?.["mediabatch.yaml"]) return [...errs, `ConfigMap ${cm.metadata.name}: no mediabatch.yaml`];
	const cfgMount = (main.volumeMounts ?? []).find((m) => m.name === cfgVol.name);
	check(cfgMount?.readOnly === true, "mediabatchd mounts the configuration read-only");
	const cfgPath = `${cfgMount?.mountPath}/mediabatch.yaml`;
	const sriov = "dpdk.yaml" in cm.data;
	let text = cm.data["mediabatch.yaml"];
	if (sriov) {
		check("start-dpdk.sh" in cm.data, "sriov: the ConfigMap holds start-dpdk.sh");
		check(!/^(eal|udp|idle):/m.test(text), "sriov: mediabatch.yaml must not have eal, udp or idle sections: start-dpdk.sh appends dpdk.yaml's");
		text += cm.data["dpdk.yaml"];
	}
	const cfg = parseDocs(`ConfigMap ${cm.metadata.name} mediabatch.yaml${sriov ? " + dpdk.yaml" : ""}`, text)[0] ?? {};
	const svcCfg = cfg.service ?? {};

	// how the daemon is started
	const argv = [...(main.command ?? []), ...(main.args ?? [])];
	if (sriov) {
		check(JSON.stringify(argv) === JSON.stringify(["/bin/sh", `${cfgMount?.mountPath}/start-dpdk.sh`]), `sriov: mediabatchd runs /bin/sh ${cfgMount?.mountPath}/start-dpdk.sh (found ${argv.join(" ")})`);
		const run = mountOf(main, "/run/mediabatch/mediabatch.yaml");
		check(run && !run.readOnly && volume(run.name)?.emptyDir, "sriov: start-dpdk.sh writes /run/mediabatch/mediabatch.yaml: a writable emptyDir there");
	} else {
		check(argv[0] === "/usr/local/bin/mediabatchd", `mediabatchd runs /usr/local/bin/mediabatchd (found ${argv[0]})`);
		const i = argv.indexOf("--config");
		check(i > 0 && argv[i + 1] === cfgPath, `mediabatchd --config ${cfgPath} (the ConfigMap's file; found ${argv.join(" ")})`);
	}

	// Guaranteed QoS, whole CPUs (static CPU manager policy)
	for (const c of [...inits, ...spec.containers]) {
		const req = c.resources?.requests ?? {};
		const lim = c.resources?.limits ?? {};
		for (const r of ["cpu", "memory"]) check(r in req && r in lim, `container ${c.name}: requests and limits of ${r} (Guaranteed QoS)`);
		for (const r of new Set([...Object.keys(req), ...Object.keys(lim)])) {
			check(r in req && r in lim && quantity(req[r], `${c.name} ${r}`) === quantity(lim[r], `${c.name} ${r}`), `container ${c.name}: ${r} requests (${req[r]}) must equal its limits (${lim[r]}) (Guaranteed QoS)`);
		}
		if ("cpu" in req) check(Number.isInteger(quantity(req.cpu, `${c.name} cpu`)) && quantity(req.cpu) >= 1, `container ${c.name}: cpu ${req.cpu} must be a whole number of CPUs (static CPU manager policy)`);
	}
	const lim = main.resources?.limits ?? {};
	const cpus = quantity(lim.cpu ?? 0, "cpu");
	const gpus = Number(lim["nvidia.com/gpu"] ?? 0);
	check(gpus >= 1, "mediabatchd: a limit of nvidia.com/gpu");

	// GPU nodes
	check(spec.nodeSelector?.["nvidia.com/gpu.present"] === "true", "nodeSelector nvidia.com/gpu.present: \"true\"");
	check((spec.tolerations ?? []).some((t) => t.key === "nvidia.com/gpu"), "a toleration of nvidia.com/gpu");
	check(spec.hostNetwork !== true, "hostNetwork is false (the pod network; DPDK through components/sriov)");
	const cuda = cfg.devices?.cuda ?? {};
	check(cuda.mode === "required", `devices.cuda.mode: required (found ${cuda.mode})`);
	check((cuda.gpus ?? []).length <= gpus && (cuda.gpus ?? []).every((g) => g < gpus), `devices.cuda.gpus ${JSON.stringify(cuda.gpus)}: the container sees ordinals 0..${gpus - 1} only`);
	const cpuWorkers = cfg.devices?.cpu?.workers;
	check(Number.isInteger(cpuWorkers) && cpuWorkers >= 1 && cpuWorkers <= cpus, `devices.cpu.workers ${cpuWorkers}: set it, 1..${cpus} (0 counts the node's CPUs, not the pod's)`);

	// ports: configuration = container = probes = annotation = Service (= ServiceMonitor)
	const cport = (n) => (main.ports ?? []).find((p) => p.name === n)?.containerPort;
	const resolve = (port) => (typeof port === "number" ? port : cport(port));
	const eps = {};
	for (const [key, pname] of [["ingest", "zmq-ingest"], ["publish", "zmq-publish"], ["metrics", "metrics"]]) {
		const ep = endpoint(svcCfg[key] ?? "", `service.${key}`);
		eps[key] = ep.port;
		check(ep.host === "0.0.0.0" || ep.host === "*", `service.${key} ${svcCfg[key]}: bind all interfaces (0.0.0.0 or *)`);
		check(cport(pname) === ep.port, `container port ${pname} (${cport(pname)}) must be service.${key}'s port ${ep.port}`);
	}
	const scheme = cfg.http?.tls_cert ? "HTTPS" : "HTTP";
	for (const [probe, p] of [["startupProbe", "/healthz"], ["livenessProbe", "/healthz"], ["readinessProbe", "/readyz"]]) {
		const h = main[probe]?.httpGet;
		check(h, `mediabatchd: ${probe} (httpGet ${p})`);
		if (!h) continue;
		check(h.path === p, `${probe}: path ${p} (found ${h.path})`);
		check(resolve(h.port) === eps.metrics, `${probe}: port ${h.port} is ${resolve(h.port)}, but service.metrics listens on ${eps.metrics}`);
		check((h.scheme ?? "HTTP") === scheme, `${probe}: scheme ${scheme} (http.tls_cert)`);
	}
	const ann = ds.spec.template.metadata?.annotations ?? {};
	check(ann["prometheus.io/scrape"] === "true", "annotation prometheus.io/scrape: \"true\"");
	check(Number(ann["prometheus.io/port"]) === eps.metrics, `annotation prometheus.io/port ${ann["prometheus.io/port"]} must be service.metrics's port ${eps.metrics}`);
	check(ann["prometheus.io/path"] === "/metrics", "annotation prometheus.io/path: /metrics");

	const svcs = find("Service");
	check(svcs.length === 1, "one Service");
	const svc = svcs[0];
	if (svc) {
		check(svc.spec.clusterIP === "None", "Service: headless (clusterIP: None), for discovery by DNS");
		check(svc.spec.publishNotReadyAddresses !== true, "Service: only ready pods in DNS");
		check(Object.keys(svc.spec.selector ?? {}).length > 0 && Object.entries(svc.spec.selector).every(([k, v]) => tmplLabels[k] === v), "Service: its selector matches the pods' labels");
		for (const [pname, port] of [["zmq-ingest", eps.ingest], ["zmq-publish", eps.publish], ["metrics", eps.metrics]]) {
			const sp = (svc.spec.ports ?? []).find((p) => p.name === pname);
			check(sp && sp.port === port && resolve(sp.targetPort ?? sp.port) === port, `Service port ${pname}: port and targetPort ${port}`);
		}
		for (const sm of find("ServiceMonitor")) {
			check(Object.entries(sm.spec.selector?.matchLabels ?? {}).every(([k, v]) => svc.metadata.labels?.[k] === v), "ServiceMonitor: its selector matches the Service's labels");
			for (const e of sm.spec.endpoints ?? []) {
				const sp = (svc.spec.ports ?? []).find((p) => p.name === e.port);
				check(sp && resolve(sp.targetPort ?? sp.port) === eps.metrics, `ServiceMonitor endpoint port ${e.port}: must be the Service's port for service.metrics (${eps.metrics})`);
				check((e.path ?? "/metrics") === "/metrics", "ServiceMonitor endpoint path /metrics");
				// the alert rules must see these targets: the job they select is the one the
				// Prometheus Operator gives them
				const sj = serviceMonitorJob(sm, svc, e);
				if (sj.error) check(false, `ServiceMonitor ${sm.metadata.name} endpoint port ${e.port}: ${sj.error}`);
				else if (jobs) {
					const sel = [...jobs];
					check(sel.length === 1 && sel[0] === sj.job, `ServiceMonitor ${sm.metadata.name} endpoint port ${e.port}: its targets get job="${sj.job}" (${sj.how}), but ${RULES} selects ${sel.map((j) => (j.startsWith("=") || j.startsWith("!") ? `job${j}` : `job="${j}"`)).join(", ") || "no job"}: no alert would fire (a relabeling with targetLabel: job, replacement: the rules' job)`);
				}
			}
		}
	}

	// the drain fits in the grace period
	const drainMs = svcCfg.drain_timeout_ms ?? 5000;
	const pre = main.lifecycle?.preStop;
	let sleep = 0;
	if (pre?.sleep) sleep = pre.sleep.seconds;
	else if (pre?.exec && /(^|\/)sleep$/.test(pre.exec.command?.[0] ?? "")) sleep = Number(pre.exec.command[1]);
	else check(false, "mediabatchd: a preStop hook that sleeps (SIGTERM itself drains; the sleep lets the endpoints go first)");
	const grace = spec.terminationGracePeriodSeconds ?? 30;
	const need = sleep + Math.ceil(drainMs / 1000) + 1;
	check(grace > need, `terminationGracePeriodSeconds ${grace} must exceed preStop ${sleep} s + drain_timeout_ms ${drainMs} + 1 s for unread replies = ${need} s`);

	// CURVE keys: the Secret, copied mode 0600 to where security.server_key points
	const sec = cfg.security ?? {};
	const secretVols = (spec.volumes ?? []).filter((v) => v.secret);
	for (const v of secretVols) {
		for (const [what, mode] of [["defaultMode", v.secret.defaultMode ?? 0o644], ...(v.secret.items ?? []).map((i) => [`items ${i.key} mode`, i.mode ?? v.secret.defaultMode ?? 0o644])])
			check(mode === 0o400 || mode === 0o600, `Secret volume ${v.name}: ${what} ${mode.toString(8).padStart(4, "0")} must be 0400 or 0600 (key files readable by their owner only)`);
	}
	if (sec.mode === "curve") {
		const keyFiles = [sec.server_key, ...(sec.clients ?? []).map((c) => c.public_key_file).filter(Boolean)];
		const keyDir = path.posix.dirname(sec.server_key ?? "");
		const km = mountOf(main, sec.server_key ?? "");
		const kv = km && volume(km.name);
		check(kv?.emptyDir?.medium === "Memory", `security.server_key ${sec.server_key}: in an in-memory emptyDir of mediabatchd (the init container's copy; found ${km?.name})`);
		const sv = secretVols[0];
		check(secretVols.length === 1, "one Secret volume: the CURVE keys");
		const init = inits.find((c) => (c.volumeMounts ?? []).some((m) => m.name === sv?.name) && (c.volumeMounts ?? []).some((m) => m.name === km?.name));
		check(init, "an init container that mounts the CURVE Secret and the keys' emptyDir");
		if (init && sv && km) {
			const src = (init.volumeMounts ?? []).find((m) => m.name === sv.name).mountPath;
			const dst = (init.volumeMounts ?? []).find((m) => m.name === km.name).mountPath;
			const keyDirInInit = path.posix.join(dst, path.posix.relative(km.mountPath, keyDir));
			const cmd = [...(init.command ?? []), ...(init.args ?? [])].join(" ");
			check(cmd.includes(`install -m 0600 ${src}/* ${keyDirInInit}/`), `init container ${init.name}: copies ${src}/* to ${keyDirInInit}/ with install -m 0600 (found: ${cmd})`);
			check(!(main.volumeMounts ?? []).some((m) => m.name === sv.name), "mediabatchd reads the copy, not the Secret volume (group-readable under fsGroup)");
			const uid = (c) => c.securityContext?.runAsUser ?? spec.securityContext?.runAsUser;
			check(uid(init) === uid(main) && uid(main) !== undefined, `the init container and mediabatchd run as the same uid (the copy is theirs, mode 0600): ${uid(init)} and ${uid(main)}`);
		}
		for (const f of keyFiles) check(f && path.posix.dirname(f) === keyDir, `security key file ${f}: in ${keyDir}, where the keys are copied`);
		if (exampleSecret) {
			check(exampleSecret.metadata?.name === sv?.secret?.secretName, `curve-secret.example.yaml: Secret ${exampleSecret.metadata?.name}, but the volume wants ${sv?.secret?.secretName}`);
			check(nss.has(exampleSecret.metadata?.namespace), "curve-secret.example.yaml: in the pods' namespace");
			const keys = Object.keys({ ...exampleSecret.data, ...exampleSecret.stringData });
			for (const f of keyFiles) check(keys.includes(path.posix.basename(f ?? "")), `curve-secret.example.yaml: no ${path.posix.basename(f ?? "")}, which mediabatch.yaml reads`);
			for (const [k, v] of Object.entries(exampleSecret.stringData ?? {})) {
				check(!/"[0-9A-Za-z.\-:+=^!/*?&<>()[\]{}@%$#]{40}"/.test(v), `curve-secret.example.yaml ${k}: holds something that looks like a real key: only placeholders belong there`);
				check(/PLACEHOLDER/.test(v), `curve-secret.example.yaml ${k}: says PLACEHOLDER`);
			}
			check(!exampleSecret.data, "curve-secret.example.yaml: stringData placeholders only (no data:)");
		}
	}
	const weights = cfg.weights_dir;
	if (weights) {
		const wm = mountOf(main, weights);
		check(wm?.readOnly === true, `weights_dir ${weights}: a read-only mount of mediabatchd`);
	}

	// file system and capabilities
	const podSc = spec.securityContext ?? {};
	const uid = main.securityContext?.runAsUser ?? podSc.runAsUser;
	check(main.securityContext?.readOnlyRootFilesystem === true, "mediabatchd: readOnlyRootFilesystem");
	check(main.securityContext?.allowPrivilegeEscalation === false, "mediabatchd: allowPrivilegeEscalation false");
	check((main.securityContext?.capabilities?.drop ?? []).includes("ALL"), "mediabatchd: capabilities drop ALL");
	const added = main.securityContext?.capabilities?.add ?? [];
	check(main.securityContext?.privileged !== true, "mediabatchd: not privileged");
	const runtimeDir = uid === 0 ? "/var/run/dpdk" : "/tmp";
	const rt = mountOf(main, runtimeDir + "/x");
	check(rt && !rt.readOnly && volume(rt.name)?.emptyDir, `mediabatchd: a writable emptyDir at ${runtimeDir} (DPDK's runtime directory as uid ${uid})`);
	if (!sriov) {
		check(added.length === 0, `no capabilities added without DPDK (found ${added.join(", ")})`);
		check(podSc.runAsNonRoot === true && uid !== 0, "runAsNonRoot, uid not 0, without DPDK");
	} else {
		const allowed = ["IPC_LOCK", "NET_RAW"];
		check(added.includes("IPC_LOCK"), "sriov: capability IPC_LOCK (vfio pins the DPDK heap)");
		for (const a of added) check(allowed.includes(a), `sriov: capability ${a} is not one DPDK on a VF needs (${allowed.join(", ")}; see daemonset-patch.yaml)`);
		check(uid === 0, "sriov: uid 0, or the added capabilities never reach the process");
		const nets = ds.spec.template.metadata?.annotations?.["k8s.v1.cni.cncf.io/networks"];
		check(nets, "sriov: the annotation k8s.v1.cni.cncf.io/networks");
		const vfRes = Object.keys(lim).filter((r) => r.includes("/") && r !== "nvidia.com/gpu");
		check(vfRes.length === 1 && Number(lim[vfRes[0]]) === 1, `sriov: one VF resource (intel.com/...: 1), found ${vfRes.join(", ")}`);
		const env = Object.fromEntries((main.env ?? []).map((e) => [e.name, e.value]));
		if (vfRes[0]) check(env.MB_DPDK_PCI_ENV === "PCIDEVICE_" + vfRes[0].toUpperCase().replace(/[^A-Z0-9]/g, "_"), `sriov: MB_DPDK_PCI_ENV ${env.MB_DPDK_PCI_ENV} must be the device plugin's variable for ${vfRes[0]}`);
		check(nets && env.MB_DPDK_NETWORK && nets.split(",").map((s) => s.trim().split("@")[0].split("/").pop()).includes(env.MB_DPDK_NETWORK), `sriov: MB_DPDK_NETWORK ${env.MB_DPDK_NETWORK} is an attached network (${nets})`);
		const huge = quantity(lim["hugepages-2Mi"] ?? 0, "hugepages-2Mi");
		check(huge > 0, "sriov: hugepages-2Mi");
		const hm = (main.volumeMounts ?? []).find((m) => volume(m.name)?.emptyDir?.medium === "HugePages-2Mi");
		check(hm, "sriov: a HugePages-2Mi emptyDir mounted");
		const pn = (spec.volumes ?? []).find((v) => v.downwardAPI?.items?.some((i) => i.fieldRef?.fieldPath === "metadata.annotations['k8s.v1.cni.cncf.io/network-status']"));
		check(pn && mountOf(main, "/etc/podnetinfo/network-status")?.name === pn.name, "sriov: the network-status annotation at /etc/podnetinfo/network-status (start-dpdk.sh)");
		const args = cfg.eal?.args ?? [];
		const a = args.indexOf("-a");
		check(a >= 0 && args[a + 1] === "@VF_PCI@", "sriov: eal.args -a @VF_PCI@");
		check(!args.includes("--no-huge") && !args.includes("-l") && !args.includes("-c"), "sriov: eal.args: hugepages, and no -l/-c (the CPU manager's set)");
		const m = args.indexOf("-m");
		check(m >= 0 && Number(args[m + 1]) * 2 ** 20 <= huge, `sriov: eal.args -m ${args[m + 1]} MiB must fit in hugepages-2Mi ${lim["hugepages-2Mi"]}`);
		check((cfg.udp?.ports ?? []).length === 1 && cfg.udp.ports[0].device === "@VF_PCI@" && cfg.udp.ports[0].address === "@VF_ADDRESS@", "sriov: udp.ports: the VF, @VF_PCI@ at @VF_ADDRESS@");
	}
	return errs;
}

const listFiles = (d) => fs.readdirSync(d, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? listFiles(path.join(d, e.name)) : [path.resolve(d, e.name)]));

// --- main ----------------------------------------------------------------------------------

function kubectlPath(args) {
	if (args.noKubectl) return null;
	if (args.kubectl) return args.kubectl;
	try {
		execFileSync("kubectl", ["kustomize", "--help"], { stdio: "ignore" });
		return "kubectl";
	} catch {
		return null;
	}
}

async function validateRoot(root, kubectl, out) {
	const errs = [];
	const rendered = renderAll(root, kubectl);
	const exampleFile = path.join(root, DIR, "base/curve-secret.example.yaml");
	const examples = parseDocs(exampleFile);
	if (examples.length !== 1 || examples[0].kind !== "Secret") fail(`${exampleFile}: one Secret expected`);
	const unused = listFiles(path.join(root, DIR)).filter((f) => !filesRead.has(f));
	if (unused.length) errs.push(`files that no kustomization uses, so nothing checks: ${unused.map((f) => path.relative(root, f)).join(", ")}`);
	const all = [...rendered.flatMap((r) => r.objs), examples[0]];
	const fields = fieldChecker(all);
	// each problem once, with the renderings it is in
	const where = new Map();
	const note = (name, e) => where.set(e, [...(where.get(e) ?? []), name]);
	for (const [name, objs] of [...rendered.map((r) => [r.name, r.objs]), ["curve-secret.example.yaml", [examples[0]]]])
		for (const o of objs) for (const e of [...(await ajvValidate(o)), ...fields.check(o)]) note(name, `${o.kind}/${o.metadata?.name}: ${e}`);
	const jobs = rulesJobs(root);
	for (const r of rendered) for (const e of invariants(r.name, r.objs, examples[0], jobs)) note(r.name, e);
	for (const [e, names] of where) errs.push(`${names.join(", ")}: ${e}`);
	if (out) {
		for (const r of rendered) {
			fs.mkdirSync(path.join(out, r.name, "config"), { recursive: true });
			fs.writeFileSync(path.join(out, `${r.name}.yaml`), r.objs.map((o) => YAML.stringify(o)).join("---\n"));
			const cm = r.objs.find((o) => o.kind === "ConfigMap");
			for (const [k, v] of Object.entries(cm?.data ?? {})) fs.writeFileSync(path.join(out, r.name, "config", k), v);
		}
		fs.mkdirSync(path.join(out, "secret-example"), { recursive: true });
		for (const [k, v] of Object.entries(examples[0].stringData ?? {})) fs.writeFileSync(path.join(out, "secret-example", k), v, { mode: 0o600 });
	}
	return { errs, rendered };
}

async function main() {
	const args = { roots: [], out: null, kubectl: null, noKubectl: false };
	const argv = process.argv.slice(2);
	for (let i = 0; i < argv.length; i++) {
		const a = argv[i];
		if (a === "--root") args.roots.push(path.resolve(argv[++i]));
		else if (a === "--out") args.out = path.resolve(argv[++i]);
		else if (a === "--kubectl") args.kubectl = argv[++i];
		else if (a === "--no-kubectl") args.noKubectl = true;
		else {
			console.error(`validate.mjs: unknown argument ${a}`);
			process.exit(2);
		}
	}
	if (!args.roots.length) args.roots.push(process.cwd());
	const kubectl = kubectlPath(args);
	console.log(`validate.mjs: Kubernetes ${K8S_VERSION} API schemas (kubernetes-models), strict; ${kubectl ? `renderings compared with \`${kubectl} kustomize\`` : "no kubectl: renderings by this script alone"}`);
	let failed = 0;
	for (const root of args.roots) {
		let errs;
		let rendered = [];
		try {
			({ errs, rendered } = await validateRoot(root, kubectl, args.out));
		} catch (e) {
			if (!(e instanceof Problem)) throw e;
			errs = [e.message];
		}
		if (errs.length) {
			failed++;
			console.log(`${root}: FAIL`);
			for (const e of errs) console.log(`  ${e}`);
		} else console.log(`${root}: ok (${rendered.map((r) => `${r.name}: ${r.objs.length} objects`).join("; ")})`);
	}
	process.exit(failed ? 1 : 0);
}

await main();
