/** `convoy deployments list`: the deployments the controller stores (from `convoy apply`). */
import path from 'node:path';
import type { Command } from 'commander';
import type { DeploymentSpec } from '../../../shared/fleet/types';
import { parseDoc, withClient, withConnectionOptions, type CommonFlags } from '../common';
import { printJson, printTable } from '../output';

export function registerDeploymentsList(deployments: Command): void {
  withConnectionOptions(deployments.command('list'))
    .description('the deployments the controller stores')
    .action((flags: CommonFlags) =>
      withClient(flags, async (client) => {
        const list = parseDoc<DeploymentSpec[]>(await client.call('ListDeployments', {}));
        if (flags.json === true) return printJson(list);
        printTable(
          ['DEPLOYMENT', 'RECIPE', 'TARGET', 'HOST ENTRIES', 'WINDOW'],
          list.map((d) => [d.name, path.basename(d.recipe), d.target, String(d.hosts.length), d.window]),
        );
      }),
    );
}
