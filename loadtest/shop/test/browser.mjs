// The shopper's page in a real browser (loadtest/shop.sh): two shoppers, each in a
// headless Debian Chromium of their own (their own storage, so their own device), open
// the shop of a sale of ONE unit with a waiting room that opens a few seconds later. Both
// join before the opening and see the countdown; at the opening the room draws their
// order; the one whose turn comes first is admitted, buys, and sees the order placed; the
// other sees sold out. The page is driven only as a shopper would: type, click, read.
//
//   node browser.mjs SHOP_URL SCREENSHOT_DIR
//
// Writes SCREENSHOT_DIR/shop-waiting.png (the pre-queue) and shop-ordered.png (the order
// placed). Exits non-zero, saying what it saw, unless exactly one shopper ordered and the
// other was told sold out.
import { chromium } from "playwright-core";

const [url, shots] = process.argv.slice(2);
const run = Date.now().toString(36);
const flags = [
  "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync",
];
const browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args: flags });
const timeout = 90_000;

async function shopper(name) {
  const context = await browser.newContext({ viewport: { width: 520, height: 640 } });
  const page = await context.newPage();
  page.setDefaultTimeout(timeout);
  await page.goto(url);
  await page.locator("#join:enabled").waitFor();
  await page.fill("#user", `${name}-${run}`);
  await page.click("#join");
  await page.locator("#countdown").filter({ hasText: "Opens in" }).waitFor();
  return page;
}

function fail(message) {
  console.error(`browser test: FAIL: ${message}`);
  process.exitCode = 1;
}

try {
  const pages = [await shopper("ada"), await shopper("bob")];
  await pages[0].screenshot({ path: `${shots}/shop-waiting.png` });
  console.log("  both shoppers joined before the opening and see the countdown");
  // Whoever's turn comes buys; the other must end on sold out.
  const outcome = async (page) => {
    const turn = page.locator("#turn-step:not([hidden])");
    const result = page.locator("#result:not([hidden])");
    await turn.or(result).first().waitFor();
    if (await turn.isVisible()) {
      await page.click("#order");
      await result.waitFor();
    }
    return (await page.textContent("#result-title")).trim();
  };
  const seen = await Promise.all(pages.map(outcome));
  console.log(`  outcomes: ${seen.join(", ")}`);
  const ordered = seen.indexOf("Order placed");
  if (ordered < 0 || seen.filter((s) => s === "Order placed").length !== 1) {
    fail(`exactly one shopper should have ordered: ${JSON.stringify(seen)}`);
  } else if (seen[1 - ordered] !== "Sold out") {
    fail(`the other shopper should see sold out: ${JSON.stringify(seen)}`);
  } else {
    const detail = await pages[ordered].textContent("#result-detail");
    if (!/^Order [0-9a-f-]{36} is reserved for you\.$/.test(detail.trim())) {
      fail(`the order's answer: ${detail}`);
    }
    await pages[ordered].screenshot({ path: `${shots}/shop-ordered.png` });
    console.log("browser test: PASS: one shopper admitted and ordered, the other told sold out");
  }
} catch (e) {
  fail(e.message);
} finally {
  await browser.close();
}
