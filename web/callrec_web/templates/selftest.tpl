% rebase('layout.tpl', title=_('Self-test'), section='selftest')
<h1>{{_('Self-test')}}</h1>
<p>{{_('Checks the board and its microcontroller, the pins, the audio path (a 1 kHz test tone is played through the announcement relay and must come back on the capture side), storage (a file written, synced, read back and deleted on each volume), the recordings index, the clock and the encryption key. It takes a few seconds and runs only while the line is idle: a call that starts meanwhile takes the line back at once.')}}</p>
% if error:
<div class="errors" role="alert"><p>{{_(error)}}</p></div>
% end
% if available:
<form method="post" action="/selftest">
  <input type="hidden" name="csrf_token" value="{{csrf}}">
  <button type="submit">{{_('Run the self-test')}}</button>
</form>
% end
<section id="result" aria-labelledby="result-h">
  <h2 id="result-h">{{_('Last result')}}</h2>
% if not report:
  <p>{{_('No self-test has run yet.')}}</p>
% else:
%   overall = {'ok': _('All checks passed'), 'warn': _('Passed, with warnings'), 'fail': _('Failed')}.get(report['overall'], report['overall'])
  <p role="status"><strong class="selftest-{{report['overall']}}">{{overall}}</strong> — {{local_time(report['started_at'], True) or report['started_at']}}, {{_('{board} board, run by the recorder.', board=report['backend']) if report['mode'] == 'daemon' else _('{board} board, run from the command line.', board=report['backend'])}}</p>
  <div class="table-wrap" role="region" aria-labelledby="checks-caption" tabindex="0">
  <table>
    <caption id="checks-caption">{{_('Checks')}}</caption>
    <thead><tr><th scope="col">{{_('Check')}}</th><th scope="col">{{_('Result')}}</th><th scope="col">{{_('Detail')}}</th><th scope="col">{{_('What to do')}}</th></tr></thead>
    <tbody>
%   for r in report['results']:
      <tr>
        <th scope="row">{{_(titles[r['item']]) if r['item'] in titles else r['item']}}</th>
        <td class="selftest-{{r['status']}}">{{_(status_text[r['status']]) if r['status'] in status_text else r['status']}}</td>
        <td>{{say(_, r.get('detail_t'), r['detail'])}}</td>
        <td>{{say(_, r.get('remedy_t'), r['remedy']) if r['remedy'] else '—'}}</td>
      </tr>
%   end
    </tbody>
  </table>
  </div>
% end
</section>
<p class="help">{{!_('From a shell: <code>callrec selftest</code> (add <code>--json</code> for tools).')}}</p>
