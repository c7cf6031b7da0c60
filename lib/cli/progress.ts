/**
 * Progress bars on stderr for the CLI's long phases. They appear only when stderr is a terminal, so piped or
 * captured output (CI, `--json | jq`) stays clean. Updates are throttled by cli-progress itself.
 *
 * A drawn bar hides the cursor. While one is on screen, Ctrl-C (SIGINT) stops it, shows the cursor again and
 * ends the process with status 130, as a shell expects of a program interrupted by SIGINT; stopAllProgress()
 * does the same clean-up for the other ways out (a closed pipe, see main.ts).
 */
import { SingleBar } from 'cli-progress';

export interface Progress {
  /** Sets the current value (0..total). */
  update(value: number): void;
  /** Ends the bar (idempotent). */
  stop(): void;
}

const SILENT: Progress = { update() {}, stop() {} };

/** The terminal sequence that shows the cursor (cli-progress hides it with `\x1b[?25l`). */
export const SHOW_CURSOR = '\x1b[?25h';

const active = new Set<Progress>();

function onInterrupt(): void {
  stopAllProgress();
  process.stderr.write(SHOW_CURSOR);
  process.exit(130);
}

/** Stops every bar still drawn (each shows the cursor again as it stops). */
export function stopAllProgress(): void {
  for (const bar of [...active]) bar.stop();
}

/**
 * Starts a bar labelled `label` counting to `total` `unit`s, e.g. `replaying [███░░] 20% 60/300 reps`; a no-op
 * object when stderr is not a terminal (or `enabled` is false). With the unit '%', the bar shows the percentage
 * alone.
 */
export function startProgress(label: string, total: number, unit = '', enabled = true): Progress {
  if (!enabled || !process.stderr.isTTY || !(total > 0)) return SILENT;
  const count = unit === '%' ? '' : ` {value}/{total}${unit ? ` ${unit}` : ''}`;
  // The handler goes in before the bar hides the cursor: a Ctrl-C typed as soon as the bar shows finds it.
  if (active.size === 0) process.on('SIGINT', onInterrupt);
  const bar = new SingleBar({
    stream: process.stderr,
    format: `${label.padEnd(14)} [{bar}] {percentage}%${count}`,
    barsize: 30,
    hideCursor: true,
    clearOnComplete: true,
  });
  let stopped = false;
  const progress: Progress = {
    update(value: number) {
      if (!stopped) bar.update(Math.min(total, Math.max(0, Math.round(value))));
    },
    stop() {
      if (stopped) return;
      stopped = true;
      active.delete(progress);
      if (active.size === 0) process.off('SIGINT', onInterrupt);
      bar.stop();
    },
  };
  active.add(progress);
  bar.start(total, 0);
  return progress;
}
