/**
 * VS Code wiring of the guarded flash and the planned Device OS update.
 *
 * "Fieldsafe: Flash to Target Device" asks the server for the decision first (`fieldsafe.server.flash`
 * without `confirm`: the device is read fresh, the project compiled for its pin, nothing sent). When the
 * build would not run, a modal shows the consequence and the cost with "Retarget and rebuild" /
 * "Update Device OS first (~N KB)" / Cancel; there is no "flash anyway". When it would run, the same
 * command is sent again with `confirm: true` and the server flashes and follows the device (its
 * `$/progress` shows as a notification). "Fieldsafe: Update Device OS on Target Device" shows the plan
 * (`fieldsafe.server.updateOs` without `confirm`) before sending anything.
 */
import * as vscode from 'vscode';

import {
  buildFailure,
  type FlashAnswer,
  flashOutcomeMessage,
  refusedFlashDialog,
  type UpdateAnswer,
  updateOutcomeMessage,
  updatePlanDetail,
} from './flash';
import { type ReleaseInfo, ServerCommand, type ServerCommandId, type StatusPayload, UiCommand } from './protocol';

export interface FlashDeps {
  exec<T>(command: ServerCommandId, arg: object): Promise<T>;
  requireProject(): string;
  status(projectUri: string): StatusPayload | undefined;
  setPin(projectUri: string, version: string): Promise<void>;
  log: vscode.LogOutputChannel;
}

/** Register the flash and update commands (palette, editor title, status menu). */
export function registerFlash(deps: FlashDeps, register: (id: string, fn: (...args: unknown[]) => unknown) => void): void {
  register(UiCommand.flashToTargetDevice, () => flashToTarget(deps, 0));
  register(UiCommand.updateDeviceOs, () => updateDeviceOs(deps));
}

async function decide(deps: FlashDeps, projectUri: string): Promise<FlashAnswer> {
  return vscode.window.withProgress(
    { location: vscode.ProgressLocation.Notification, title: 'Fieldsafe: checking the build against the target device…' },
    () => deps.exec<FlashAnswer>(ServerCommand.flash, { projectUri }),
  );
}

async function flashToTarget(deps: FlashDeps, depth: number): Promise<void> {
  const projectUri = deps.requireProject();
  await vscode.workspace.saveAll(false);
  const answer = await decide(deps, projectUri);
  deps.log.info(`flash decision for ${answer.device?.name ?? 'the target device'}: ${answer.verdict ?? answer.outcome}`);
  deps.log.debug(answer.summary ?? '');
  const failed = buildFailure(answer);
  if (failed) {
    throw new Error(failed);
  }
  if (answer.allowed) {
    await send(deps, projectUri);
    return;
  }
  const dialog = refusedFlashDialog(answer);
  if (!dialog) {
    throw new Error(answer.summary ?? 'the server refused the flash; see the logs.');
  }
  const choice = await vscode.window.showWarningMessage(
    dialog.message,
    { modal: true, detail: dialog.detail },
    ...dialog.buttons.map((b) => b.title),
  );
  const button = dialog.buttons.find((b) => b.title === choice);
  if (!button) {
    deps.log.info('Flash cancelled: nothing was sent.');
    return;
  }
  if (depth > 1) {
    throw new Error('the build still would not run after retargeting; see the Problems panel.');
  }
  if (button.action === 'retarget') {
    deps.log.info(`Retargeting to ${button.release} and rebuilding.`);
    await deps.setPin(projectUri, button.release);
    await flashToTarget(deps, depth + 1);
    return;
  }
  const device = answer.device?.name ?? deps.status(projectUri)?.device ?? undefined;
  if (await runUpdate(deps, projectUri, device, button.release)) {
    await flashToTarget(deps, depth + 1);
  }
}

async function send(deps: FlashDeps, projectUri: string): Promise<void> {
  const result = await deps.exec<FlashAnswer>(ServerCommand.flash, { projectUri, confirm: true });
  const { ok, text } = flashOutcomeMessage(result);
  deps.log.info(`flash ${result.outcome ?? 'failed'}`);
  if (ok) {
    void vscode.window.showInformationMessage(`Fieldsafe: ${text}`);
  } else {
    throw new Error(text);
  }
}

async function runUpdate(deps: FlashDeps, projectUri: string, device: string | undefined, release: string): Promise<boolean> {
  const result = await deps.exec<UpdateAnswer>(ServerCommand.updateOs, { projectUri, device, release, confirm: true });
  const { ok, text } = updateOutcomeMessage(result, device ?? 'the device');
  deps.log.info(text);
  if (!ok) {
    throw new Error(text);
  }
  void vscode.window.showInformationMessage(`Fieldsafe: ${text}`);
  return true;
}

async function updateDeviceOs(deps: FlashDeps): Promise<void> {
  const projectUri = deps.requireProject();
  const status = deps.status(projectUri);
  const device = status?.device;
  if (!device) {
    throw new Error('the project has no target device: run "Fieldsafe: Select Target Device" first.');
  }
  const rows = (await deps.exec<ReleaseInfo[]>(ServerCommand.listReleases, { projectUri })) ?? [];
  const newer = rows.filter((r) => r.needsDeviceUpdate && !r.prerelease);
  if (newer.length === 0) {
    void vscode.window.showInformationMessage(`Fieldsafe: no newer Device OS release to update ${device} to.`);
    return;
  }
  const pinned = status?.pinnedRelease;
  const items = newer.map((r) => ({
    label: r.version,
    description: [r.version === pinned ? 'pinned' : '', r.lts ? 'LTS' : ''].filter(Boolean).join(' · '),
  }));
  items.sort((a, b) => Number(b.label === pinned) - Number(a.label === pinned));
  const choice = await vscode.window.showQuickPick(items, {
    title: `Update Device OS on ${device}`,
    placeHolder: `${device} runs ${status?.deviceRelease ?? '?'} — pick the release to update it to`,
  });
  if (!choice) {
    return;
  }
  const plan = await deps.exec<UpdateAnswer>(ServerCommand.updateOs, { projectUri, device, release: choice.label });
  if (plan.refused || plan.nothingToDo) {
    void vscode.window.showWarningMessage(`Fieldsafe: ${plan.summary ?? 'nothing to do'}`);
    return;
  }
  const go = 'Update';
  const answer = await vscode.window.showWarningMessage(
    `Update ${device} to Device OS ${choice.label}?`,
    { modal: true, detail: updatePlanDetail(plan) },
    go,
  );
  if (answer === go) {
    await runUpdate(deps, projectUri, device, choice.label);
  }
}
