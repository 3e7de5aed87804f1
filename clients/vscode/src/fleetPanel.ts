/**
 * VS Code wiring of the fleet target: the fleet view (a webview painted by `fleet.ts`) and the
 * product / group pickers. Every number comes from the server (`fieldsafe.server.fleetView`,
 * `listProducts`, `listGroups`); settings are written by the server (`setFleetTarget`), which edits the
 * project's own `.vscode/settings.json` keeping its comments.
 */
import * as crypto from 'crypto';
import * as vscode from 'vscode';

import {
  fleetHtml,
  type FleetViewData,
  type GroupInfo,
  groupPickItems,
  productOfStatus,
  type ProductInfo,
  productPickItems,
} from './fleet';
import { ServerCommand, type ServerCommandId, type StatusPayload, UiCommand } from './protocol';

export interface FleetDeps {
  exec<T>(command: ServerCommandId, arg: object): Promise<T>;
  requireProject(): string;
  status(projectUri: string): StatusPayload | undefined;
  setPin(projectUri: string, version: string): Promise<void>;
  log: vscode.LogOutputChannel;
}

let panel: vscode.WebviewPanel | undefined;
let panelProject: string | undefined;

/** Register the fleet commands; returns a hook the extension calls on each `fieldsafe/status`. */
export function registerFleet(
  context: vscode.ExtensionContext,
  deps: FleetDeps,
  register: (id: string, fn: (...args: unknown[]) => unknown) => void,
): (status: StatusPayload) => void {
  register(UiCommand.showFleet, () => showFleet(deps));
  register(UiCommand.selectTargetProduct, () => selectTargetProduct(deps));
  register(UiCommand.selectTargetGroups, () => selectTargetGroups(deps));
  context.subscriptions.push({ dispose: () => panel?.dispose() });
  return (status) => {
    if (panel && panelProject === status.projectUri) {
      void render(deps, status.projectUri);
    }
  };
}

async function showFleet(deps: FleetDeps): Promise<void> {
  const projectUri = deps.requireProject();
  if (!panel) {
    panel = vscode.window.createWebviewPanel('fieldsafe.fleet', 'Fieldsafe Fleet', vscode.ViewColumn.Beside, {
      enableScripts: true,
      localResourceRoots: [],
    });
    panel.onDidDispose(() => {
      panel = undefined;
      panelProject = undefined;
    });
    panel.webview.onDidReceiveMessage((msg: { type?: string; release?: string }) => {
      const project = panelProject;
      if (!project) {
        return;
      }
      if (msg.type === 'refresh') {
        void deps.exec(ServerCommand.refreshFleet, { projectUri: project }).then(() => render(deps, project));
      } else if (msg.type === 'pickGroups') {
        void vscode.commands.executeCommand(UiCommand.selectTargetGroups);
      } else if (msg.type === 'pickProduct') {
        void vscode.commands.executeCommand(UiCommand.selectTargetProduct);
      } else if (msg.type === 'retarget' && msg.release) {
        void deps.setPin(project, msg.release);
      }
    });
  }
  panelProject = projectUri;
  panel.reveal(vscode.ViewColumn.Beside);
  await render(deps, projectUri);
}

async function render(deps: FleetDeps, projectUri: string): Promise<void> {
  if (!panel) {
    return;
  }
  const data = await deps.exec<FleetViewData>(ServerCommand.fleetView, { projectUri });
  if (!panel) {
    return;
  }
  panel.title = data?.product ? `Fleet: ${data.product}` : 'Fieldsafe Fleet';
  const nonce = crypto.randomBytes(16).toString('base64');
  panel.webview.html = fleetHtml(data ?? { product: null }, { nonce, cspSource: panel.webview.cspSource });
}

async function selectTargetProduct(deps: FleetDeps): Promise<void> {
  const projectUri = deps.requireProject();
  const current = productOfStatus(deps.status(projectUri)?.fleet);
  const items = deps
    .exec<{ products: ProductInfo[] }>(ServerCommand.listProducts, { projectUri })
    .then((r) => productPickItems(r?.products ?? [], current).map((i) => ({ ...i, value: i.value })));
  const choice = await vscode.window.showQuickPick(items, {
    title: 'Target product (fieldsafe.targetProduct)',
    placeHolder: `Target: ${current ?? 'none'} — pick the product whose fleet this firmware must run on`,
    matchOnDescription: true,
    matchOnDetail: true,
  });
  if (choice?.value) {
    await deps.exec(ServerCommand.setFleetTarget, { projectUri, product: choice.value });
    deps.log.info(`Target product ${choice.value} for ${projectUri}`);
  }
}

async function selectTargetGroups(deps: FleetDeps): Promise<void> {
  const projectUri = deps.requireProject();
  const product = productOfStatus(deps.status(projectUri)?.fleet);
  if (!product) {
    throw new Error('pick a target product first ("Fieldsafe: Select Target Product").');
  }
  const answer = await deps.exec<{ groups: GroupInfo[] }>(ServerCommand.listGroups, { projectUri, product });
  const current = (await currentGroups(deps, projectUri)) ?? [];
  const items = groupPickItems(answer?.groups ?? [], current);
  const choice = await vscode.window.showQuickPick(items, {
    title: `Target groups of ${product} (fieldsafe.targetGroups)`,
    placeHolder: 'Pick the groups a release goes to (none = the product default)',
    canPickMany: true,
  });
  if (choice) {
    const groups = choice.map((c) => c.value).filter((v): v is string => typeof v === 'string');
    await deps.exec(ServerCommand.setFleetTarget, { projectUri, product, groups });
    deps.log.info(`Target groups ${groups.join(', ') || '(product default)'} for ${projectUri}`);
  }
}

async function currentGroups(deps: FleetDeps, projectUri: string): Promise<string[] | undefined> {
  const data = await deps.exec<FleetViewData>(ServerCommand.fleetView, { projectUri });
  return data?.groups;
}
