/**
 * Progress bars on stderr for the CLI's long phases. They appear only when stderr is a terminal, so piped or
 * captured output (CI, `--json | jq`) stays clean. Updates are throttled by cli-progress itself.
 */
import { SingleBar } from 'cli-progress';

export interface Progress {
  /** Sets the current value (0..total). */
  update(value: number): void;
  /** Ends the bar (idempotent). */
  stop(): void;
}

const SILENT: Progress = { update() {}, stop() {} };

/**
 * Starts a bar labelled `label` counting to `total` `unit`s; a no-op object when stderr is not a terminal
 * (or `enabled` is false).
 */
export function startProgress(label: string, total: number, unit = '', enabled = true): Progress {
  if (!enabled || !process.stderr.isTTY || !(total > 0)) return SILENT;
  const bar = new SingleBar({
    stream: process.stderr,
    format: `${label.padEnd(14)} [{bar}] {percentage}% {value}/{total}${unit ? ` ${unit}` : ''}`,
    hideCursor: true,
    clearOnComplete: true,
  });
  bar.start(total, 0);
  let stopped = false;
  return {
    update(value: number) {
      if (!stopped) bar.update(Math.min(total, Math.max(0, Math.round(value))));
    },
    stop() {
      if (stopped) return;
      stopped = true;
      bar.stop();
    },
  };
}
