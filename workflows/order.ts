import { branch, flow, TerminalError, task } from '../shared/index.ts';

/** An order to fulfil. */
export interface Order {
  readonly orderId: string;
  readonly customer: string;
  readonly items: readonly { readonly sku: string; readonly qty: number; readonly price: number }[];
  /** Test hook: the payment provider fails this many times before accepting. */
  readonly flakyPayments?: number;
}

export interface Charged {
  readonly orderId: string;
  readonly amount: number;
  readonly chargeId: string;
}

/** Charges the order; retried with backoff, fails terminally on an empty order. */
export const charge = task(
  'charge',
  async (order: Order, ctx): Promise<Charged> => {
    if (order.items.length === 0) throw new TerminalError('order has no items');
    if (ctx.attempt <= (order.flakyPayments ?? 0))
      throw new Error(`payment provider unavailable (attempt ${ctx.attempt})`);
    const amount = order.items.reduce((sum, i) => sum + i.qty * i.price, 0);
    return { orderId: order.orderId, amount, chargeId: `ch_${ctx.idempotencyKey}` };
  },
  { retry: { maxAttempts: 4, initialDelay: '200ms', maxDelay: '2s' }, timeout: '30s', priority: 'high' },
);

const sendEmail = task('send-email', (c: Charged) => ({ to: 'customer', about: c.orderId, sent: true }));
const ship = task('ship', (c: Charged) => ({ orderId: c.orderId, carrier: 'post', tracking: `TRK-${c.orderId}` }));

/**
 * Order fulfilment: charge (retried), then email and ship in parallel, join,
 * a cool-off delay, then wait for a manager's approval (with a timeout).
 */
export const fulfil = flow<Order>('fulfil', {
  description: 'Charges, emails and ships an order, then waits for approval.',
})
  .then(charge)
  .fork([branch('email', sendEmail), branch('shipping', ship)])
  .join('done', ([email, shipment]) => ({ emailed: email.sent, tracking: shipment.tracking }))
  .delay('cool-off', '2s')
  .waitForSignal<{ ok: boolean }>('approve', 'manager-approval', { timeout: '48h' })
  .then('close', (approval) => ({ approved: approval.ok }))
  .build();
