/** Every subcommand of the CLI, registered in the order `pymalloc --help` lists them. */
import type { Command } from 'commander';
import { registerDemoCommand } from './demo';
import { registerLayoutCommand } from './layout';
import { registerPagesCommand } from './pages';
import { registerRecordCommand } from './record';
import { registerReplayCommand } from './replay';
import { registerTuneCommand } from './tune';

export function registerCommands(program: Command): void {
  // Each command module exports register<Name>Command(program); they are added here as they land.
  registerDemoCommand(program);
  registerPagesCommand(program);
  registerLayoutCommand(program);
  registerReplayCommand(program);
  registerRecordCommand(program);
  registerTuneCommand(program);
}
