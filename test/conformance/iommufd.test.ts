/**
 * The iommufd/cdev acceptance test: every trace recorded on the Linux 6.12 test kernel
 * (test/oracle/record-6.12.sh) replays to exactly the bytes the kernel printed.
 */
import { join } from "node:path";
import { describeRecordedCorpus } from "./recorded-corpus";

describeRecordedCorpus(join(__dirname, "linux-6.12-iommufd"));
