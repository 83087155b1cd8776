// Types for tsc --checkJs only (never loaded by a page): the shapes the dashboard's parts share.

/** One watchlist row (watchlist.js): its elements and the prices kept for its sparkline and chart. */
export interface Row {
    ticker: string;
    /** the table row (tr) */
    el: any;
    /** price, chg, pct, vol, lo, hi, priceCell, chip, note, mark, line, area, base */
    cells: Record<string, any>;
    /** the sparkline's prices, at most CHART_POINTS */
    points: number[];
    /** the chart's prices (charts.js recordPrice): epoch ms, ascending, one per second at most */
    times: number[];
    prices: number[];
    /** the latest price_update */
    last: any;
    trend: 'up' | 'down' | 'flat';
    /** 'up' or 'down' until the next frame plays it */
    flash: 'up' | 'down' | null;
    flashParity: number;
}

/** The latest pattern of a ticker, shown on its row. */
export interface PatternChip {
    text: string;
    title: string;
    /** when it was detected, epoch ms */
    time: number;
}
