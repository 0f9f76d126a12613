// Prints one plain closing line, `tests: N passed, N failed, N skipped`, that any CI log reader
// understands (jest's own summary says "N total" instead of the failure count).
class SummaryReporter {
  onRunComplete(_contexts, results) {
    const skipped = results.numPendingTests + results.numTodoTests;
    process.stdout.write(
      `tests: ${results.numPassedTests} passed, ${results.numFailedTests} failed, ${skipped} skipped\n`,
    );
  }
}
module.exports = SummaryReporter;
