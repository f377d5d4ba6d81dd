/**
 * The README's HAProxy example is the file the failover test and the cluster
 * benchmark run (`docs/haproxy.cfg`): this keeps the README from drifting.
 */
import { readFileSync } from 'node:fs'
import { resolve } from 'node:path'
import { expect, test } from 'vitest'
import { HAPROXY_EXAMPLE } from '../helpers/haproxy.ts'

test('README shows docs/haproxy.cfg verbatim', () => {
  const readme = readFileSync(resolve(import.meta.dirname, '../../README.md'), 'utf8')
  expect(readme).toContain('```\n' + readFileSync(HAPROXY_EXAMPLE, 'utf8') + '```')
})
