// The whole flow through a client generated from openapi.json with openapi-typescript (default options) and
// openapi-fetch, as a TypeScript integration would write it: an inbox, a campaign (leaving out every field the
// server defaults), bulk leads, resume, every lead through cursor pagination, analytics, a webhook.
//
// Talks only to the server at IMAIL_URL. Prints one JSON line per milestone on stdout; after resuming it waits
// for a line on stdin (the test runs the sending worker meanwhile), so the analytics it reads count real sends.
// Any failed check throws: the process exits non-zero with the reason on stderr.
import { createInterface } from "node:readline";

import createClient from "openapi-fetch";

import type { components, paths } from "./generated/imail.js";

type Schemas = components["schemas"];

function env(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
}

function check(condition: boolean, message: string): asserts condition {
  if (!condition) throw new Error(message);
}

function report(step: string, details: Record<string, unknown> = {}): void {
  process.stdout.write(JSON.stringify({ step, ...details }) + "\n");
}

/** The body of a successful call, or a thrown error carrying the API's error body. */
function ok<T>(result: { data?: T; error?: unknown; response: Response }, what: string): T {
  if (result.data === undefined) {
    throw new Error(`${what}: HTTP ${result.response.status} ${JSON.stringify(result.error)}`);
  }
  return result.data;
}

const stdinLines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();

async function nextLine(): Promise<string> {
  const line = await stdinLines.next();
  if (line.done) throw new Error("stdin closed before the test answered");
  return line.value;
}

async function main(): Promise<void> {
  const leads = env("IMAIL_LEADS").split(",");
  const pageSize = 2;
  // JSON bodies only: the analytics reports can also answer text/csv (`format=csv`), which this flow never asks for.
  const api = createClient<paths, "application/json">({
    baseUrl: env("IMAIL_URL"),
    headers: { Authorization: `Bearer ${env("IMAIL_API_KEY")}` },
  });

  const inbox: Schemas["Inbox"] = ok(
    await api.POST("/v1/inboxes", {
      body: {
        email: env("MAILBOX_EMAIL"),
        name: "Ana Lima",
        daily_limit: 50,
        sending_gap_minutes: 0,
        smtp_host: "127.0.0.1",
        smtp_port: Number(env("SMTP_PORT")),
        smtp_password: env("SMTP_PASSWORD"),
        smtp_security: "starttls",
        imap_host: "127.0.0.1",
        imap_port: Number(env("IMAP_PORT")),
        imap_password: env("IMAP_PASSWORD"),
        imap_security: "starttls",
      },
    }),
    "create inbox",
  );
  check(inbox.status === "connected", `inbox status ${inbox.status}`);

  // No track_opens, track_clicks, stop_on_reply, delay or variants: the server's defaults apply.
  const create: Schemas["CampaignCreate"] = {
    name: "Q4 outbound",
    inbox_ids: [inbox.id],
    steps: [{ subject: "Hi {{first_name|there}}", body: "<p>Hello {{first_name|there}}</p>" }],
    send_window: {
      timezone: "UTC",
      days: ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
      start: "00:00",
      end: "24:00",
    },
  };
  const campaign = ok(await api.POST("/v1/campaigns", { body: create }), "create campaign");
  check(campaign.status === "draft", `new campaign is ${campaign.status}`);
  check(campaign.track_opens && campaign.track_clicks && campaign.stop_on_reply, "defaults not applied");
  check(campaign.send_window.end === "24:00", `send window ${JSON.stringify(campaign.send_window)}`);
  check(campaign.steps[0]?.delay.unit === "days", `step 1 delay ${JSON.stringify(campaign.steps[0]?.delay)}`);

  const added = ok(
    await api.POST("/v1/leads/bulk", {
      body: {
        campaign_id: campaign.id,
        leads: leads.map((email) => ({ email, first_name: email.split("@")[0] ?? null })),
      },
    }),
    "add leads",
  );
  check(added.created === leads.length, `created ${added.created} of ${leads.length}`);

  const resumed = ok(
    await api.POST("/v1/campaigns/{campaign_id}/resume", { params: { path: { campaign_id: campaign.id } } }),
    "resume",
  );
  check(resumed.status === "active", `resumed campaign is ${resumed.status}`);

  // Every lead, newest first, a small page at a time.
  const seen: string[] = [];
  let cursor: string | null = null;
  let pages = 0;
  do {
    const page: Schemas["LeadList"] = ok(
      await api.GET("/v1/leads", {
        params: { query: { campaign_id: campaign.id, limit: pageSize, cursor } },  // null: not sent
      }),
      `leads page ${pages + 1}`,
    );
    pages += 1;
    check(page.data.length <= pageSize, `page of ${page.data.length}`);
    seen.push(...page.data.map((lead) => lead.email));
    cursor = page.pagination.has_more ? page.pagination.next_cursor : null;
    check(!page.pagination.has_more || cursor !== null, "has_more without a next_cursor");
    check(pages <= leads.length, "pagination does not end");
  } while (cursor !== null);
  check(pages === Math.ceil(leads.length / pageSize), `${pages} pages`);
  check(
    JSON.stringify([...seen].sort()) === JSON.stringify([...leads].sort()),
    `listed ${JSON.stringify(seen)}`,
  );
  report("resumed", { campaign_id: campaign.id, pages });

  check((await nextLine()) === "sent", "unexpected answer from the test");

  const analytics = ok(
    await api.GET("/v1/analytics/campaigns/{campaign_id}", { params: { path: { campaign_id: campaign.id } } }),
    "campaign analytics",
  );
  check(analytics.totals.sent === leads.length, `analytics totals.sent ${analytics.totals.sent}`);
  check(analytics.steps[0]?.step === 1, `analytics steps ${JSON.stringify(analytics.steps)}`);

  const funnel = ok(
    await api.GET("/v1/analytics/funnel", { params: { query: { campaign_id: campaign.id } } }),
    "funnel",
  );
  const sentStage = funnel.stages.find((stage) => stage.stage === "sent");
  check(sentStage?.count === leads.length, `funnel stages ${JSON.stringify(funnel.stages)}`);
  check(funnel.totals.sent === leads.length, `funnel totals ${JSON.stringify(funnel.totals)}`);

  const webhook = ok(
    await api.POST("/v1/webhooks", { body: { url: env("WEBHOOK_URL"), events: ["email.sent"] } }),
    "create webhook",
  );
  check(webhook.secret.startsWith("whsec_"), "webhook secret");
  check(webhook.status === "enabled", `webhook status ${webhook.status}`);
  const queued = ok(
    await api.POST("/v1/webhooks/{webhook_id}/test", { params: { path: { webhook_id: webhook.id } } }),
    "test webhook",
  );
  check(queued.status === "pending", `test delivery ${queued.status}`);
  const deliveries = ok(
    await api.GET("/v1/webhooks/{webhook_id}/deliveries", { params: { path: { webhook_id: webhook.id } } }),
    "webhook deliveries",
  );
  check(deliveries.data.map((d) => d.id).join() === queued.id, `deliveries ${JSON.stringify(deliveries.data)}`);

  // Errors arrive typed: the contract's error body.
  const missing = await api.GET("/v1/campaigns/{campaign_id}", { params: { path: { campaign_id: "cmp_missing" } } });
  check(missing.response.status === 404 && missing.error?.error.code === "not_found", "missing campaign");

  report("done", { webhook_event_id: queued.event_id });
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    process.stderr.write(`flow failed: ${error instanceof Error ? error.stack ?? error.message : String(error)}\n`);
    process.exit(1);
  },
);
