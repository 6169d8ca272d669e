// The runs page: the job list on its own, its filters kept in the address bar.

import "./header.js";
import { mountJobList } from "./joblist.js";

const root = document.getElementById("job-list");
root.dataset.syncUrl = "";
mountJobList(root);
