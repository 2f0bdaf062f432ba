% rebase('layout.tpl', title='Erasure receipt', section='subjects')
<p><a href="/subjects">← People</a></p>
<h1>Erasure receipt</h1>
<p role="status" class="flash">{{len(receipt['erased'])}} recording(s) erased for person <code>{{receipt['subject']}}</code> (request <code>{{receipt['request']}}</code>).</p>
<p class="actions"><a class="button" href="/subjects/requests/{{receipt['request']}}/receipt">Printable receipt</a> <a class="button" href="/subjects/requests/{{receipt['request']}}/receipt?format=json">Receipt as JSON</a></p>
<table>
  <caption>Erased</caption>
  <thead><tr><th scope="col">Date and time</th><th scope="col">Direction</th><th scope="col">Volume</th><th scope="col">Identifier</th></tr></thead>
  <tbody>
% for rec in receipt['erased']:
    <tr><td>{{local_time(rec.get('started_at')) or '—'}}</td><td>{{t('direction_' + rec['direction']) if rec.get('direction') in ('in', 'out') else ''}}</td><td>{{'USB stick' if rec.get('volume') == 'usb' else 'SD card'}}</td><td><code>{{rec['id']}}</code></td></tr>
% end
  </tbody>
</table>
% if receipt['not_erased']:
<h2>Not erased</h2>
<ul>
% for rec in receipt['not_erased']:
  <li><code>{{rec['id']}}</code>: {{rec.get('why', '')}}</li>
% end
</ul>
% end
% if receipt['warnings']:
<h2>Notes</h2>
<ul>
% for w in receipt['warnings']:
  <li>{{w}}</li>
% end
</ul>
% end
