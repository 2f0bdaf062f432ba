% rebase('layout.tpl', title='Self-test', section='selftest')
<h1>Self-test</h1>
<p>Checks the board and its microcontroller, the pins, the audio path (a 1 kHz test tone is played through the announcement relay and must come back on the capture side), storage (a file written, synced, read back and deleted on each volume), the recordings index, the clock and the encryption key. It takes a few seconds and runs only while the line is idle: a call that starts meanwhile takes the line back at once.</p>
% if error:
<div class="errors" role="alert"><p>{{error}}</p></div>
% end
% if available:
<form method="post" action="/selftest">
  <input type="hidden" name="csrf_token" value="{{csrf}}">
  <button type="submit">Run the self-test</button>
</form>
% end
<section id="result" aria-labelledby="result-h">
  <h2 id="result-h">Last result</h2>
% if not report:
  <p>No self-test has run yet.</p>
% else:
%   overall = {'ok': 'All checks passed', 'warn': 'Passed, with warnings', 'fail': 'Failed'}.get(report['overall'], report['overall'])
  <p role="status"><strong class="selftest-{{report['overall']}}">{{overall}}</strong> — {{local_time(report['started_at'], True) or report['started_at']}}, {{report['backend']}} board{{', run by the recorder' if report['mode'] == 'daemon' else ', run from the command line'}}.</p>
  <div class="table-wrap" role="region" aria-labelledby="checks-caption" tabindex="0">
  <table>
    <caption id="checks-caption">Checks</caption>
    <thead><tr><th scope="col">Check</th><th scope="col">Result</th><th scope="col">Detail</th><th scope="col">What to do</th></tr></thead>
    <tbody>
%   for r in report['results']:
      <tr>
        <th scope="row">{{titles.get(r['item'], r['item'])}}</th>
        <td class="selftest-{{r['status']}}">{{status_text.get(r['status'], r['status'])}}</td>
        <td>{{r['detail']}}</td>
        <td>{{r['remedy'] or '—'}}</td>
      </tr>
%   end
    </tbody>
  </table>
  </div>
% end
</section>
<p class="help">From a shell: <code>callrec selftest</code> (add <code>--json</code> for tools).</p>
