/**
 * Guarded flash and planned Device OS update: what the dialogs say, from the server's answers.
 *
 * Pure (no `vscode` import) so it is unit-tested under plain Node. The decision itself (would the
 * device run the build, which upgrade path, what it costs) is the server's (`fieldsafe.server.flash`,
 * `fieldsafe.server.updateOs`, i.e. `fieldsafe.guard` / `fieldsafe.osupdate`); this module only picks
 * the words and the buttons. There is deliberately no "flash anyway" button.
 */

export interface FindingJson {
  code: string;
  severity: string;
  message: string;
}

export interface PlanStepJson {
  module: string;
  release: string;
  bytes: number;
  sizeSource?: string;
}

export interface PlanJson {
  path?: string;
  steps?: PlanStepJson[];
  totalBytes?: number;
  appBytes?: number;
  reboots?: number;
  downtimeSeconds?: number | null;
  intermediateReleases?: string[];
}

/** `fieldsafe.server.flash` answer (decision, and the outcome once sent). */
export interface FlashAnswer {
  verdict?: 'send' | 'send_with_update' | 'refuse';
  allowed?: boolean;
  summary?: string;
  outcome?: string;
  sent?: boolean;
  device?: { name?: string; deviceOs?: string | null } | null;
  neededRelease?: string | null;
  predictedBytes?: number;
  plan?: PlanJson | null;
  retarget?: { title?: string; release?: string | null } | null;
  update?: { title?: string; release?: string | null; bytes?: number | null } | null;
  findings?: FindingJson[];
  build?: { ok?: boolean; release?: string; findings?: FindingJson[] } | null;
  deviceAfter?: { deviceOs?: string | null } | null;
  waitSeconds?: number;
}

/** `fieldsafe.server.updateOs` answer (plan, and the outcome once run). */
export interface UpdateAnswer {
  summary?: string;
  refused?: boolean;
  nothingToDo?: boolean;
  outcome?: string;
  plan?: PlanJson | null;
  findings?: FindingJson[];
  sentBytes?: number;
  resumedFrom?: number;
  deviceAfter?: { deviceOs?: string | null } | null;
}

export type DialogAction = 'retarget' | 'update';

export interface DialogButton {
  title: string;
  action: DialogAction;
  release: string;
}

export interface Dialog {
  message: string;
  detail: string;
  buttons: DialogButton[];
}

export function kb(bytes: number | null | undefined): string {
  return `${Math.round((bytes ?? 0) / 1000).toLocaleString('en-US')} KB`;
}

const firstError = (findings: FindingJson[] | undefined): FindingJson | undefined =>
  findings?.find((f) => f.severity === 'error') ?? findings?.[0];

/**
 * The modal for a refused flash: the consequence and cost (the server's words), and the two ways out
 * the server offered. Undefined when the flash may go ahead (or the build failed: see `buildFailure`).
 */
export function refusedFlashDialog(answer: FlashAnswer): Dialog | undefined {
  if (answer.allowed !== false || answer.verdict !== 'refuse') {
    return undefined;
  }
  const device = answer.device?.name ?? 'the target device';
  const runs = answer.device?.deviceOs ?? 'its Device OS';
  const needs = answer.neededRelease ? ` (it needs Device OS ${answer.neededRelease}, ${device} runs ${runs})` : '';
  const buttons: DialogButton[] = [];
  const retarget = answer.retarget?.release;
  if (retarget) {
    buttons.push({ title: 'Retarget and rebuild', action: 'retarget', release: retarget });
  }
  const update = answer.update;
  if (update?.release) {
    buttons.push({ title: `Update Device OS first (~${kb(update.bytes)})`, action: 'update', release: update.release });
  }
  const details = (answer.findings ?? [])
    .filter((f) => f.severity === 'error' || f.severity === 'warning')
    .map((f) => `${f.message} [${f.code}]`);
  return {
    message: `This build would not run on ${device}${needs}. Nothing was sent.`,
    detail: details.join('\n\n') || answer.summary || '',
    buttons,
  };
}

/** Why a flash could not even be decided (the compile failed): undefined when there is a decision. */
export function buildFailure(answer: FlashAnswer): string | undefined {
  if (answer.outcome !== 'build_failed') {
    return undefined;
  }
  const first = firstError(answer.build?.findings ?? answer.findings);
  return `the build failed, nothing was sent${first ? `: ${first.message}` : ''}`;
}

/** The notification after a flash was sent: success says what runs now; failure says why. */
export function flashOutcomeMessage(answer: FlashAnswer): { ok: boolean; text: string } {
  const device = answer.device?.name ?? 'the device';
  if (answer.outcome === 'done') {
    const release = answer.deviceAfter?.deviceOs ?? '?';
    return { ok: true, text: `Flashed ${device}: back online running the new app on Device OS ${release}.` };
  }
  if (answer.outcome === 'declined') {
    return { ok: false, text: 'Flash cancelled: nothing was sent.' };
  }
  const first = firstError(answer.findings?.filter((f) => f.code === 'FS607')) ?? firstError(answer.findings);
  return { ok: false, text: `Flash of ${device} ${answer.outcome ?? 'failed'}: ${first?.message ?? answer.summary ?? ''}` };
}

/** The plan as the confirmation dialog shows it: one line per module, then the total and the cost. */
export function updatePlanDetail(answer: UpdateAnswer): string {
  const plan = answer.plan;
  const lines = (plan?.steps ?? []).map(
    (s, i) => `${i + 1}. ${s.module} ${s.release}: ${s.bytes.toLocaleString('en-US')} B${s.sizeSource ? ` (${s.sizeSource})` : ''}`,
  );
  if (plan?.intermediateReleases?.length) {
    lines.unshift(`Via ${plan.intermediateReleases.join(', ')}`);
  }
  lines.push('', answer.summary ?? `Total ${kb(plan?.totalBytes)}`);
  return lines.join('\n');
}

/** The notification after an update ran. */
export function updateOutcomeMessage(answer: UpdateAnswer, device: string): { ok: boolean; text: string } {
  if (answer.outcome === 'done') {
    return {
      ok: true,
      text: `Updated ${device} to Device OS ${answer.deviceAfter?.deviceOs ?? '?'} (${kb(answer.sentBytes)} sent).`,
    };
  }
  const first = firstError(answer.findings);
  return { ok: false, text: `Device OS update of ${device} ${answer.outcome ?? 'failed'}: ${first?.message ?? answer.summary ?? ''}` };
}
