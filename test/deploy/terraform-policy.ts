// Security policy for Sluice's Terraform, checked on the HCL itself (parsed in Node by @cdktf/hcl2json, the
// HashiCorp HCL parser compiled to WebAssembly), so it runs without the terraform binary, providers or AWS.
// Each rule returns violations rather than throwing, so tests can prove a rule fires on a bad fixture.
//
// What hcl2json gives: blocks as arrays of bodies; literal values as JSON values; any expression as a
// string wrapped in "${...}". A setting that must be a literal (encrypted = true) is only accepted when it
// is one: an expression can't be proved here, so it counts as a violation.
import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

// Loaded through require so the package's type declarations (which pull the DOM lib into the whole
// program) stay out of the project's type check.
const hcl2json = createRequire(import.meta.url)('@cdktf/hcl2json') as {
  parse(filename: string, contents: string): Promise<Record<string, unknown>>;
};

export type Rule =
  | 'unencrypted-volume'
  | 'imds-v1'
  | 'public-ip'
  | 'ingress'
  | 'open-egress'
  | 'iam-wildcard'
  | 'iam-unverifiable'
  | 'user-data-unverified';

export interface Violation {
  rule: Rule;
  where: string;
  message: string;
}

/** A statement allowed to use `*` in an action or resource, with the exact actions it may hold. */
export interface WildcardAllowance {
  document: string;
  sid: string;
  actions: readonly string[];
  resources: readonly string[];
  why: string;
}

type Body = Record<string, unknown>;

interface Module {
  dir: string;
  resources: Map<string, Map<string, Body[]>>;
  data: Map<string, Map<string, Body[]>>;
  locals: Map<string, unknown>;
}

function blocks(value: unknown): Body[] {
  if (!Array.isArray(value)) return [];
  return value.filter((item): item is Body => typeof item === 'object' && item !== null);
}

function strings(value: unknown): string[] {
  if (typeof value === 'string') return [value];
  if (!Array.isArray(value)) return [];
  return value.filter((item): item is string => typeof item === 'string');
}

function isTrue(value: unknown): boolean {
  return value === true || value === 'true';
}

function isFalse(value: unknown): boolean {
  return value === false || value === 'false';
}

function byType(section: unknown): Map<string, Map<string, Body[]>> {
  const result = new Map<string, Map<string, Body[]>>();
  if (typeof section !== 'object' || section === null) return result;
  for (const [type, named] of Object.entries(section)) {
    const names = new Map<string, Body[]>();
    for (const [name, bodies] of Object.entries(named as Body)) names.set(name, blocks(bodies));
    result.set(type, names);
  }
  return result;
}

function merge(into: Map<string, Map<string, Body[]>>, from: Map<string, Map<string, Body[]>>): void {
  for (const [type, names] of from) {
    const target = into.get(type) ?? new Map<string, Body[]>();
    for (const [name, bodies] of names) target.set(name, [...(target.get(name) ?? []), ...bodies]);
    into.set(type, target);
  }
}

/** hcl2json's rendering of every `.tf` file of one directory, not its subdirectories. */
export async function parseDirectory(dir: string): Promise<Record<string, unknown>[]> {
  const files = readdirSync(dir)
    .filter((file) => file.endsWith('.tf'))
    .sort();
  const parsed: Record<string, unknown>[] = [];
  for (const file of files)
    parsed.push(await hcl2json.parse(file, readFileSync(path.join(dir, file), 'utf8')));
  return parsed;
}

/** Parses one directory (a module or a fixture) into what the rules look at. */
export async function loadModule(dir: string): Promise<Module> {
  const module: Module = { dir, resources: new Map(), data: new Map(), locals: new Map() };
  for (const parsed of await parseDirectory(dir)) {
    merge(module.resources, byType(parsed.resource));
    merge(module.data, byType(parsed.data));
    for (const locals of blocks(parsed.locals)) {
      for (const [name, value] of Object.entries(locals)) module.locals.set(name, value);
    }
  }
  return module;
}

function* each(
  section: Map<string, Map<string, Body[]>>,
  types: readonly string[],
): Generator<[string, Body]> {
  for (const type of types) {
    for (const [name, bodies] of section.get(type) ?? []) {
      for (const body of bodies) yield [`${type}.${name}`, body];
    }
  }
}

const INSTANCE_TYPES = ['aws_launch_template', 'aws_instance', 'aws_launch_configuration'] as const;

function checkEncryption(module: Module): Violation[] {
  const violations: Violation[] = [];
  const flag = (where: string, message: string) =>
    violations.push({ rule: 'unencrypted-volume', where, message });

  for (const [where, body] of each(module.resources, ['aws_launch_template'])) {
    const mappings = blocks(body.block_device_mappings);
    if (mappings.length === 0) {
      flag(where, 'no block_device_mappings: the root volume would be whatever the AMI says');
    }
    for (const mapping of mappings) {
      for (const ebs of blocks(mapping.ebs)) {
        if (!isTrue(ebs.encrypted))
          flag(where, `volume ${String(mapping.device_name)} is not encrypted = true`);
      }
    }
  }
  for (const [where, body] of each(module.resources, ['aws_instance', 'aws_launch_configuration'])) {
    const roots = blocks(body.root_block_device);
    if (roots.length === 0)
      flag(where, 'no root_block_device: the root volume would be whatever the AMI says');
    for (const device of [...roots, ...blocks(body.ebs_block_device)]) {
      if (!isTrue(device.encrypted)) flag(where, 'a block device is not encrypted = true');
    }
  }
  for (const [where, body] of each(module.resources, ['aws_ebs_volume'])) {
    if (!isTrue(body.encrypted)) flag(where, 'volume is not encrypted = true');
  }
  return violations;
}

function checkImds(module: Module): Violation[] {
  const violations: Violation[] = [];
  for (const [where, body] of each(module.resources, INSTANCE_TYPES)) {
    const options = blocks(body.metadata_options);
    if (options.length === 0 || !options.every((option) => option.http_tokens === 'required')) {
      violations.push({
        rule: 'imds-v1',
        where,
        message: 'metadata_options.http_tokens is not "required" (IMDSv2)',
      });
    }
  }
  return violations;
}

function checkPublicIp(module: Module): Violation[] {
  const violations: Violation[] = [];
  const flag = (where: string, message: string) => violations.push({ rule: 'public-ip', where, message });
  for (const [where, body] of each(module.resources, ['aws_launch_template'])) {
    const interfaces = blocks(body.network_interfaces);
    if (interfaces.length === 0) {
      flag(where, 'no network_interfaces with associate_public_ip_address = false: the subnet would decide');
    }
    for (const nic of interfaces) {
      if (!isFalse(nic.associate_public_ip_address)) flag(where, 'associate_public_ip_address is not false');
    }
  }
  for (const [where, body] of each(module.resources, ['aws_instance', 'aws_launch_configuration'])) {
    if (!isFalse(body.associate_public_ip_address)) flag(where, 'associate_public_ip_address is not false');
  }
  for (const [where] of each(module.resources, ['aws_eip', 'aws_eip_association'])) {
    flag(where, 'an Elastic IP gives a worker a public address');
  }
  return violations;
}

function checkSecurityGroups(module: Module): Violation[] {
  const violations: Violation[] = [];
  const ingress = (where: string, message: string) => violations.push({ rule: 'ingress', where, message });
  const egress = (where: string, message: string) => violations.push({ rule: 'open-egress', where, message });
  const allProtocols = (value: unknown) => value === '-1' || value === -1 || value === 'all';

  for (const [where, body] of each(module.resources, ['aws_security_group'])) {
    // An ingress list given as an expression can't be proved empty.
    if (blocks(body.ingress).length > 0 || typeof body.ingress === 'string') {
      ingress(where, 'the security group has an ingress rule');
    }
    for (const rule of blocks(body.egress)) {
      if (allProtocols(rule.protocol)) egress(where, 'an egress rule allows every protocol and port');
    }
  }
  for (const [where] of each(module.resources, ['aws_vpc_security_group_ingress_rule'])) {
    ingress(where, 'an ingress rule resource');
  }
  for (const [where, body] of each(module.resources, ['aws_security_group_rule'])) {
    if (body.type !== 'egress') ingress(where, `a security group rule of type ${String(body.type)}`);
    else if (allProtocols(body.protocol)) egress(where, 'an egress rule allows every protocol and port');
  }
  for (const [where, body] of each(module.resources, ['aws_vpc_security_group_egress_rule'])) {
    if (allProtocols(body.ip_protocol)) egress(where, 'an egress rule allows every protocol and port');
  }
  return violations;
}

// "${local.name}" → the local's value, so a wildcard can't hide behind a local.
function resolveLocals(module: Module, value: string, depth = 0): string {
  const match = /^\$\{local\.([A-Za-z0-9_]+)\}$/.exec(value);
  const resolved = match ? module.locals.get(match[1]!) : undefined;
  if (typeof resolved !== 'string' || depth > 8) return value;
  return resolveLocals(module, resolved, depth + 1);
}

function documentStatements(body: Body): Body[] {
  const statements = blocks(body.statement);
  for (const dynamic of blocks(body.dynamic)) {
    for (const generated of blocks(dynamic.statement)) statements.push(...blocks(generated.content));
  }
  return statements;
}

const POLICY_ATTRIBUTES: Record<string, readonly string[]> = {
  aws_iam_policy: ['policy'],
  aws_iam_role_policy: ['policy'],
  aws_iam_user_policy: ['policy'],
  aws_iam_group_policy: ['policy'],
  aws_iam_role: ['assume_role_policy'],
  aws_kms_key: ['policy'],
  aws_s3_bucket_policy: ['policy'],
};

function checkIam(module: Module, allowances: readonly WildcardAllowance[]): Violation[] {
  const violations: Violation[] = [];
  const flag = (rule: Rule, where: string, message: string) => violations.push({ rule, where, message });

  for (const [name, bodies] of module.data.get('aws_iam_policy_document') ?? []) {
    for (const body of bodies) {
      for (const statement of documentStatements(body)) {
        const sid = typeof statement.sid === 'string' ? statement.sid : '(no sid)';
        const where = `data.aws_iam_policy_document.${name} statement ${sid}`;
        if (statement.not_actions !== undefined || statement.not_resources !== undefined) {
          flag('iam-wildcard', where, 'not_actions / not_resources grant everything else');
        }
        if (statement.effect === 'Deny') continue;
        const actions = strings(statement.actions);
        const resources = strings(statement.resources).map((resource) => resolveLocals(module, resource));
        const wildActions = actions.filter((action) => action.includes('*'));
        const wildResources = resources.filter((resource) => resource.includes('*'));
        if (wildActions.length === 0 && wildResources.length === 0) continue;
        const allowance = allowances.find((entry) => entry.document === name && entry.sid === sid);
        if (!allowance) {
          flag(
            'iam-wildcard',
            where,
            `wildcard not on the allow-list: ${[...wildActions, ...wildResources].join(', ')}`,
          );
          continue;
        }
        const extraActions = actions.filter((action) => !allowance.actions.includes(action));
        const extraResources = wildResources.filter((resource) => !allowance.resources.includes(resource));
        if (extraActions.length > 0 || extraResources.length > 0) {
          flag(
            'iam-wildcard',
            where,
            `beyond its allowance: ${[...extraActions, ...extraResources].join(', ')}`,
          );
        }
      }
    }
  }

  // Policies written any other way (jsonencode, heredoc JSON) can't be checked statement by statement.
  for (const [type, attributes] of Object.entries(POLICY_ATTRIBUTES)) {
    for (const [where, body] of each(module.resources, [type])) {
      const policies: unknown[] = attributes.map((attribute) => body[attribute]);
      for (const inline of blocks(body.inline_policy)) policies.push(inline.policy);
      for (const policy of policies) {
        if (policy === undefined) continue;
        if (
          typeof policy !== 'string' ||
          !/^\$\{data\.aws_iam_policy_document\.[A-Za-z0-9_-]+(\[[^\]]+\])?\.json\}$/.test(policy)
        ) {
          flag(
            'iam-unverifiable',
            where,
            'policy is not an aws_iam_policy_document, so it cannot be checked',
          );
        }
      }
    }
  }
  for (const [where, body] of each(module.resources, ['aws_iam_role'])) {
    if (body.managed_policy_arns !== undefined)
      flag('iam-unverifiable', where, 'managed policies cannot be checked');
  }
  for (const [where] of each(module.resources, [
    'aws_iam_role_policy_attachment',
    'aws_iam_policy_attachment',
    'aws_iam_role_policy_attachments_exclusive',
  ])) {
    flag('iam-unverifiable', where, 'a managed policy attachment cannot be checked');
  }
  return violations;
}

const DOWNLOAD = /\b(?:curl|wget)\b|\baws\s+s3\s+cp\b|\baws\s+s3api\s+get-object\b/;
const VERIFY =
  /\bsha256sum\s+(?:[^\n|;&]*\s)?(?:-c|--check)\b|\bshasum\s+-a\s*256\s+(?:[^\n|;&]*\s)?(?:-c|--check)\b/;
const INSTALL =
  /\btar\s+(?:[^\n|;&]*\s)?-?-?[a-zA-Z]*x[a-zA-Z]*\b|\bunzip\b|\bdpkg\s+-i\b|\brpm\s+-[iU]|\b(?:dnf|yum|apt-get|apt)\s+(?:-\S+\s+)*install\s+(?:-\S+\s+)*[./]\S+/;
const PIPE_TO_SHELL = /\|\s*(?:sudo\s+)?(?:ba|z|da)?sh\b/;
const PLAIN_HTTP = /\bhttp:\/\/(?!169\.254\.169\.254\b)(?!127\.0\.0\.1\b)(?!localhost\b)/;

function userDataText(module: Module, where: string, value: unknown): string | Violation {
  if (typeof value !== 'string') {
    return { rule: 'user-data-unverified', where, message: 'user_data is not text' };
  }
  const template = /templatefile\("\$\{path\.module\}\/([^"]+)"/.exec(value);
  if (template) return readFileSync(path.join(module.dir, template[1]!), 'utf8');
  const file = /\bfile\("\$\{path\.module\}\/([^"]+)"\)/.exec(value);
  if (file) return readFileSync(path.join(module.dir, file[1]!), 'utf8');
  if (/^\$\{[^}]*\}$/.test(value)) {
    return {
      rule: 'user-data-unverified',
      where,
      message: 'user_data comes from an expression that cannot be read',
    };
  }
  return value;
}

/** User data that installs something must download it over HTTPS and check a SHA-256 before installing. */
export function checkUserDataText(where: string, text: string): Violation[] {
  const violations: Violation[] = [];
  const flag = (message: string) => violations.push({ rule: 'user-data-unverified', where, message });
  const lines = text.split('\n').filter((line) => !/^\s*#/.test(line));
  const first = (pattern: RegExp) => lines.findIndex((line) => pattern.test(line));
  if (lines.some((line) => DOWNLOAD.test(line) && PIPE_TO_SHELL.test(line))) {
    flag('a download is piped into a shell');
  }
  if (lines.some((line) => DOWNLOAD.test(line) && PLAIN_HTTP.test(line)))
    flag('a download uses plain http://');
  const install = first(INSTALL);
  if (install < 0) return violations;
  const verify = first(VERIFY);
  if (verify < 0) flag(`installs (line "${lines[install]!.trim()}") without checking a SHA-256`);
  else if (verify > install) flag(`installs (line "${lines[install]!.trim()}") before checking its SHA-256`);
  return violations;
}

function checkUserData(module: Module): Violation[] {
  const violations: Violation[] = [];
  for (const [where, body] of each(module.resources, INSTANCE_TYPES)) {
    if (body.user_data === undefined) continue;
    const text = userDataText(module, where, body.user_data);
    if (typeof text === 'string') violations.push(...checkUserDataText(where, text));
    else violations.push(text);
  }
  return violations;
}

export async function checkTerraform(
  dir: string,
  allowances: readonly WildcardAllowance[] = [],
): Promise<Violation[]> {
  const module = await loadModule(dir);
  return [
    ...checkEncryption(module),
    ...checkImds(module),
    ...checkPublicIp(module),
    ...checkSecurityGroups(module),
    ...checkIam(module, allowances),
    ...checkUserData(module),
  ];
}
