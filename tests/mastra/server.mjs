// The Mastra server the tests talk to (tests/support/mastra.py starts it).
//
// A real Mastra 1.x server (@mastra/core with @mastra/hono on @hono/node-server), with what the
// operator's tests need and nothing that reaches the network:
// - agent `sales-agent`, with memory, on an offline model that answers "echo: <last user text>"
//   (a hand-written AI SDK LanguageModelV2: the model is the only stand-in here);
// - workflow `sum-numbers` (key `sumNumbers`): {a, b} -> {sum}, pure computation;
// - workflow `slow-maybe-fail` (key `slowMaybeFail`): sleeps `ms`, then fails when `fail`, and
//   records each execution in the file named by MASTRA_EXECUTIONS (one line per run id), so a
//   test can count how many times Mastra really ran a step.
// - workflow `await-approval` (key `awaitApproval`): {item} -> its step `approve` suspends
//   (`suspend({ask})`, resumeSchema {approved}) until resumed through Mastra's API, then
//   answers {item, approved}: what a person's sign-off looks like to the operator.
// Storage is LibSQL in the file MASTRA_DB_URL names, so a restarted server keeps its threads
// and runs, and at start it restarts the runs a killed predecessor left running. PORT picks the
// port; the API is under /api as `mastra dev` serves it.
import { appendFileSync } from 'node:fs';
import { serve } from '@hono/node-server';
import { Hono } from 'hono';
import { MastraServer } from '@mastra/hono';
import { Mastra } from '@mastra/core';
import { Agent } from '@mastra/core/agent';
import { createStep, createWorkflow } from '@mastra/core/workflows';
import { Memory } from '@mastra/memory';
import { LibSQLStore } from '@mastra/libsql';
import { z } from 'zod';

function lastUserText(prompt) {
  for (let i = prompt.length - 1; i >= 0; i--) {
    const m = prompt[i];
    if (m.role === 'user') {
      return m.content.filter((p) => p.type === 'text').map((p) => p.text).join('');
    }
  }
  return '';
}

const usage = { inputTokens: 3, outputTokens: 5, totalTokens: 8 };
const echoModel = {
  specificationVersion: 'v2',
  provider: 'echo',
  modelId: 'echo-1',
  supportedUrls: {},
  async doGenerate(options) {
    const text = `echo: ${lastUserText(options.prompt)}`;
    return { content: [{ type: 'text', text }], finishReason: 'stop', usage, warnings: [] };
  },
  async doStream(options) {
    const text = `echo: ${lastUserText(options.prompt)}`;
    const stream = new ReadableStream({
      start(c) {
        c.enqueue({ type: 'stream-start', warnings: [] });
        c.enqueue({ type: 'text-start', id: '1' });
        c.enqueue({ type: 'text-delta', id: '1', delta: text });
        c.enqueue({ type: 'text-end', id: '1' });
        c.enqueue({ type: 'finish', finishReason: 'stop', usage });
        c.close();
      },
    });
    return { stream };
  },
};

const salesAgent = new Agent({
  id: 'sales-agent',
  name: 'Sales agent',
  instructions: 'Repeat what you are told.',
  model: echoModel,
  memory: new Memory(),
});

const numbers = z.object({ a: z.number(), b: z.number() });
const add = createStep({
  id: 'add',
  inputSchema: numbers,
  outputSchema: z.object({ sum: z.number() }),
  execute: async ({ inputData }) => ({ sum: inputData.a + inputData.b }),
});
const sumNumbers = createWorkflow({
  id: 'sum-numbers',
  inputSchema: numbers,
  outputSchema: z.object({ sum: z.number() }),
}).then(add).commit();

const slowInput = z.object({ ms: z.number().default(0), fail: z.boolean().default(false) });
const slow = createStep({
  id: 'slow',
  inputSchema: slowInput,
  outputSchema: z.object({ ok: z.boolean() }),
  execute: async ({ inputData, runId }) => {
    if (process.env.MASTRA_EXECUTIONS) appendFileSync(process.env.MASTRA_EXECUTIONS, `${runId}\n`);
    await new Promise((r) => setTimeout(r, inputData.ms));
    if (inputData.fail) throw new Error('asked to fail');
    return { ok: true };
  },
});
const slowMaybeFail = createWorkflow({
  id: 'slow-maybe-fail',
  inputSchema: slowInput,
  outputSchema: z.object({ ok: z.boolean() }),
}).then(slow).commit();

const itemInput = z.object({ item: z.string() });
const approval = z.object({ item: z.string(), approved: z.boolean() });
const approve = createStep({
  id: 'approve',
  inputSchema: itemInput,
  outputSchema: approval,
  suspendSchema: z.object({ ask: z.string() }),
  resumeSchema: z.object({ approved: z.boolean() }),
  execute: async ({ inputData, resumeData, suspend }) => {
    if (!resumeData) return await suspend({ ask: `approve ${inputData.item}?` });
    return { item: inputData.item, approved: resumeData.approved };
  },
});
const awaitApproval = createWorkflow({
  id: 'await-approval',
  inputSchema: itemInput,
  outputSchema: approval,
}).then(approve).commit();

const mastra = new Mastra({
  agents: { salesAgent },
  workflows: { sumNumbers, slowMaybeFail, awaitApproval },
  storage: new LibSQLStore({ id: 'tests', url: process.env.MASTRA_DB_URL || ':memory:' }),
});

const app = new Hono();
await new MastraServer({ app, mastra, prefix: '/api' }).init();
const port = Number(process.env.PORT || 4111);
serve({ fetch: app.fetch, port, hostname: '127.0.0.1' }, (info) => {
  console.log(`mastra test server listening on ${info.port}`);
});
// A run the previous process was executing when it died is still `running` in storage; Mastra
// continues such runs from their last step only when asked, so a deployment asks at start.
for (const workflow of [sumNumbers, slowMaybeFail]) {
  workflow.restartAllActiveWorkflowRuns().catch((err) => console.error('restart failed', err));
}
