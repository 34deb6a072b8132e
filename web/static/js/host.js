// The clinician console, /host#t=<token>.
import { Visit } from "./visit.js";
import { HostPanel } from "./hostpanel.js";

const visit = new Visit("host");
new HostPanel(visit);
visit.start();
