// Types for tsc --checkJs only (never loaded by a page). The methods of the roles that are not parts of
// their own (signin, watchlist, alerts) are written in one module each and installed on RealtimeDashboard's
// prototype (dashboard.js); `Dashboard` is the class with all of
// them, the type of `this` inside each role module (`@satisfies {ThisType<Dashboard>}`).
import type { alerts } from './alerts.js';
import type { RealtimeDashboardBase, lifecycle } from './dashboard.js';
import type { signin } from './signin.js';
import type { watchlist } from './watchlist.js';

type Roles = typeof lifecycle & typeof signin & typeof watchlist & typeof alerts;

export interface Dashboard extends RealtimeDashboardBase, Roles {}
