// The patient page, /join#t=<token>.
import { Visit } from "./visit.js";
import { PartnerPanel } from "./partner.js";

const visit = new Visit("join");
new PartnerPanel(visit);
visit.start();
